"""The `picmatch` command with a hub model: first use downloads it from HF_ENDPOINT (a local
server answering like the hub), text search works, then offline use and its errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hubserver import FakeHub, serve_hub
from tests.modelgen import COLOURS, write_clip_repo

pytestmark = [pytest.mark.e2e]

REPO = "test-org/tiny-clip"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picmatch.cli", *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert text in result.stderr


def test_index_and_text_search_with_a_hub_model(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, rgb in COLOURS.items():
        Image.fromarray(np.full((60, 80, 3), rgb, np.uint8)).save(photos / f"{name}.jpg")
    hub = FakeHub()
    hub.add_folder(REPO, write_clip_repo(tmp_path / "repo"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PICMATCH_"))}
    env.update(
        PICMATCH_LIBRARY=str(tmp_path / "lib"),
        PICMATCH_CACHE_DIR=str(tmp_path / "cache"),
        PICMATCH_CONFIG=str(tmp_path / "none.toml"),
    )
    with serve_hub(hub):
        env["HF_ENDPOINT"] = hub.url
        done = run("index", str(photos), "--model", f"clip:{REPO}", "-q", env=env)
        assert done.returncode == 0, done.stderr
        assert any(m == "GET" and p.startswith("/cdn/") for m, p, _ in hub.log)
    # the hub is gone: the cached model answers, offline or not
    for offline in ("0", "1"):
        found = run("search", "--text", "a red thing", "-k", "1", "--json", env=env | {
            "HF_HUB_OFFLINE": offline})  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert Path(json.loads(found.stdout)[0]["path"]).name == "red.jpg"
    listed = run("models", env=env)
    assert f"clip:{REPO}" in listed.stdout and "3 images (default)" in listed.stdout

    fresh = env | {"PICMATCH_CACHE_DIR": str(tmp_path / "empty-cache")}
    offline = run("search", "--text", "red", env=fresh | {"HF_HUB_OFFLINE": "1"})
    one_line_error(offline, 5, "unset HF_HUB_OFFLINE")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    no_network = run("search", "--text", "red", env=fresh | {"HF_ENDPOINT": closed})
    one_line_error(no_network, 5, f"cannot download {REPO} from {closed}")
