"""A run stopped anywhere during a folder move to a new root leaves no ghost records (issue 7).

The run is stopped just before each of its SQLite commits in turn (tests/e2e/crash_at_commit.py),
then run again; the library must match a clean run: every record's file exists, nothing twice.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imagegen import synthetic

pytestmark = [pytest.mark.model, pytest.mark.e2e]
CRASH = Path(__file__).with_name("crash_at_commit.py")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _paths(library: Path) -> list[str]:
    db = sqlite3.connect(library / "store" / "picmatch.db")
    try:
        table = next(
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0].startswith("records_")
        )
        return sorted(os.fsdecode(r[0]) for r in db.execute(f'SELECT path FROM "{table}"'))
    finally:
        db.close()


def test_a_move_stopped_at_any_commit_leaves_no_ghosts(tmp_path: Path, model_cache: Path) -> None:
    old_root, new_root = tmp_path / "photos", tmp_path / "archive"
    for i in range(6):
        (old_root / "2019").mkdir(parents=True, exist_ok=True)
        synthetic(i).save(old_root / "2019" / f"img{i}.jpg")
    (old_root / "keep").mkdir()
    synthetic(50).save(old_root / "keep" / "k.jpg")
    env = {**os.environ, "PICMATCH_CACHE_DIR": str(model_cache), "PICMATCH_CONFIG": "/nonexistent"}
    before = tmp_path / "lib-before"
    indexed = _run("-m", "picmatch.cli", "index", str(old_root), "--library", str(before), env=env)
    assert indexed.returncode == 0, indexed.stderr
    new_root.mkdir()
    shutil.move(old_root / "2019", new_root / "2019")  # the folder moves to a new root
    expected = sorted([str(old_root / "keep" / "k.jpg")] + [
        str(new_root / "2019" / f"img{i}.jpg") for i in range(6)
    ])  # fmt: skip

    stopped = 0
    for n in range(1, 20):
        library = tmp_path / f"lib-{n}"
        shutil.copytree(before, library)
        args = ("index", str(new_root), "--library", str(library), "-q")
        run = _run(str(CRASH), str(n), *args, env=env)
        if run.returncode == 0:
            break  # the run needs fewer commits than n: every stopping point was tried
        assert run.returncode == 99, run.stderr
        stopped += 1
        rerun = _run("-m", "picmatch.cli", *args, env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert _paths(library) == expected, f"stopped before commit {n}"
    assert stopped >= 2
