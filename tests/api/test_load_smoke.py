"""A short run of benchmarks/load.py: concurrent uploads and id searches against a real server
process all get answered, without errors. (Speed is measured by the benchmark, not here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import IndexedLibrary

pytestmark = [pytest.mark.model, pytest.mark.e2e]

LOAD = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"


def test_load_smoke(indexed: IndexedLibrary, model_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    command = [
        sys.executable, str(LOAD), "--clients", "8", "--seconds", "2",
        "--library", str(indexed.library), "--images-from", str(indexed.root),
        "--cache", str(model_cache), "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["phase"] for r in results] == ["upload", "id"]
    for result in results:
        assert result["errors"] == 0, done.stderr
        assert result["ok"] == result["requests"] > 0
        assert result["rss_after_mb"] > 0
    assert "upload" in done.stdout and "p99 ms" in done.stdout
