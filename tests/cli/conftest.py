"""CLI fixtures: the environment a user's shell would give `picmatch`."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, library_dir: Path, model_cache: Path) -> Path:
    monkeypatch.setenv("PICMATCH_LIBRARY", str(library_dir))
    monkeypatch.setenv("PICMATCH_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("PICMATCH_CONFIG", str(library_dir.parent / "no-config.toml"))
    return library_dir
