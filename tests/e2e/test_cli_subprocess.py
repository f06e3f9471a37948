"""True end-to-end runs of the installed `picmatch` command, including a SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.imagegen import synthetic, write_photos

pytestmark = [pytest.mark.model, pytest.mark.e2e]


def _env(library: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PICMATCH_LIBRARY=str(library), PICMATCH_CACHE_DIR=str(cache))
    env["PICMATCH_CONFIG"] = str(library.parent / "none.toml")
    return env


def _picmatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picmatch.cli", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _stored_paths(library: Path) -> list[str]:
    db = sqlite3.connect(library / "store" / "picmatch.db")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next((t for t in tables if t.startswith("records_")), None)
        rows = db.execute(f'SELECT path FROM "{table}"') if table else []
        return [os.fsdecode(r[0]) for r in rows]  # stored as the file-system bytes
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_index_and_search_json_as_a_user_would(tmp_path: Path, model_cache: Path) -> None:
    photos = write_photos(tmp_path / "photos", ("chelsea", "coffee", "rocket", "astronaut"))
    env = _env(tmp_path / "lib", model_cache)
    run = _picmatch("index", str(tmp_path / "photos"), env=env)
    assert run.returncode == 0, run.stderr
    assert "added 4" in run.stdout
    run = _picmatch("search", str(photos["rocket"]), "--json", env=env)
    assert run.returncode == 0, run.stderr
    hits = json.loads(run.stdout)
    assert hits[0] == {"path": str(photos["rocket"]), "score": pytest.approx(1.0, abs=1e-5)}


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path: Path, model_cache: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(160):
        synthetic(1000 + i, (640, 480)).save(folder / f"img{i:03d}.jpg", quality=90)
    library = tmp_path / "lib"
    env = _env(library, model_cache)
    _picmatch("index", str(folder / "img000.jpg"), env=env)  # model converted, library made

    proc = subprocess.Popen(
        [sys.executable, "-m", "picmatch.cli", "index", str(folder), "-q"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while len(_stored_paths(library)) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(_stored_paths(library))
    assert 1 < partial < 160, "the kill should land mid-run"

    run = _picmatch("index", str(folder), env=env)
    assert run.returncode == 0, run.stderr
    paths = _stored_paths(library)
    assert len(paths) == len(set(paths)) == 160
    assert f"added {160 - partial}, unchanged {partial}" in run.stdout
