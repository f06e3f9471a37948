"""A full disk gives one clear line that says so and what to do, and loses nothing (issue 7).

The library lives on a real 1 MiB tmpfs, so every write path meets a true ENOSPC / SQLITE_FULL.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagegen import synthetic

pytestmark = [pytest.mark.model, pytest.mark.e2e]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)], check=False
    )
    if made.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _picmatch(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PICMATCH_CACHE_DIR": str(cache), "PICMATCH_CONFIG": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-m", "picmatch.cli", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _says_disk_full(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 7, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1
    assert "is full: free some space" in run.stderr, run.stderr


def test_full_disk_is_reported_and_nothing_is_lost(
    small_disk: Path, tmp_path: Path, model_cache: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(300):
        synthetic(i, (160, 120)).save(photos / f"img{i:03d}.jpg", quality=85)
    library = small_disk / "lib"

    _says_disk_full(
        _picmatch("index", str(photos), "--library", str(library), "-q", cache=model_cache)
    )
    _says_disk_full(
        _picmatch("index", str(photos), "--library", str(library), "-q", cache=model_cache)
    )
    removed = _picmatch(
        "remove", str(photos / "img000.jpg"), "--library", str(library), cache=model_cache
    )
    assert removed.returncode in (0, 7) and "Traceback" not in removed.stderr, removed.stderr
    new = _picmatch("index", str(photos), "--library", str(small_disk / "new"), cache=model_cache)
    _says_disk_full(new)

    # What was written is consistent and searchable while the disk is still full.
    db = sqlite3.connect(f"file:{library / 'store' / 'picmatch.db'}?mode=ro", uri=True)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    found = _picmatch("search", str(photos / "img001.jpg"), "--library", str(library), "-k", "1",
                      cache=model_cache)  # fmt: skip
    assert found.returncode == 0, found.stderr

    # With room again, the same command finishes the job.
    subprocess.run(["mount", "-o", "remount,size=64M", str(small_disk)], check=True)
    done = _picmatch("index", str(photos), "--library", str(library), "-q", cache=model_cache)
    assert done.returncode == 0, done.stderr
    assert "300 images in the library" in done.stdout
