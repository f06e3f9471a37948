"""The CLI's main test once more, with the library on a real Milvus server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import test_cli as cli
from tests.milvus_server import TOKEN

pytestmark = [pytest.mark.milvus, pytest.mark.model]


def test_cli_main_commands_on_milvus(
    milvus_url: str,
    env: Path,
    photo_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PICMATCH_STORE", milvus_url)
    monkeypatch.setenv("PICMATCH_STORE_TOKEN", TOKEN)
    cli.check_main_commands(env, photo_dir, tmp_path, capsys, "index     hnsw (milvus), 14 vectors")
    assert "milvus://" in (env / "library.json").read_text()
