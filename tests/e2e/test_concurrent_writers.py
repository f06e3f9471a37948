"""Processes writing one library at once end as if they had run one after the other (issue 7).

The roots live in the store, so every process sees the current list, and `index` and `remove`
hold the library's writer lock, so two writers serialise.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from picmatch.store.base import path_in_folder
from tests.imagegen import synthetic

pytestmark = [pytest.mark.model, pytest.mark.e2e]


def _env(library: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PICMATCH_LIBRARY=str(library), PICMATCH_CACHE_DIR=str(cache))
    env["PICMATCH_CONFIG"] = str(library.parent / "none.toml")
    return env


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "picmatch.cli", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return out


def _images(folder: Path, count: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = [folder / f"img{i:03d}.jpg" for i in range(count)]
    for i, path in enumerate(paths):
        synthetic(seed + i, (160, 120)).save(path, quality=85)
    return paths


def _state(library: Path, env: dict[str, str]) -> tuple[set[str], set[str]]:
    """(roots, record paths) as a fresh process sees them."""
    proc = _start("info", "--json", env=env)
    roots = set(json.loads(_finish(proc))["roots"])
    return roots, set(_stored_paths(library))


def _stored_paths(library: Path) -> list[str]:
    try:
        db = sqlite3.connect(f"file:{library / 'store' / 'picmatch.db'}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next((t for t in tables if t.startswith("records_")), None)
        return (
            [os.fsdecode(r[0]) for r in db.execute(f'SELECT path FROM "{table}"')] if table else []
        )
    except sqlite3.Error:
        return []
    finally:
        db.close()


def test_two_indexers_on_overlapping_folders(tmp_path: Path, model_cache: Path) -> None:
    root, other = tmp_path / "photos", tmp_path / "other"
    files = _images(root / "d1", 30, 0) + _images(root / "d3", 30, 100) + _images(other, 20, 200)
    library = tmp_path / "lib"
    env = _env(library, model_cache)
    _finish(_start("index", str(files[0]), "-q", env=env))  # the library exists, model cached

    first = _start("index", str(root), "-q", env=env)
    second = _start("index", str(root / "d3"), str(other), "-q", env=env)
    _finish(first), _finish(second)

    roots, paths = _state(library, env)
    assert roots == {str(files[0]), str(root), str(root / "d3"), str(other)}
    assert sorted(paths) == sorted(str(f) for f in files)  # each once
    assert len(_stored_paths(library)) == len(files)


def test_remove_during_index_of_the_same_folder(tmp_path: Path, model_cache: Path) -> None:
    root = tmp_path / "photos"
    files = _images(root, 120, 0)
    keep = _images(tmp_path / "keep", 2, 500)
    library = tmp_path / "lib"
    env = _env(library, model_cache)
    _finish(_start("index", str(tmp_path / "keep"), "-q", env=env))

    index = _start("index", str(root), "-q", "--workers", "1", "--batch-size", "2", env=env)
    deadline = time.monotonic() + 300
    while len(_stored_paths(library)) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    remove = _start("remove", str(root), env=env)  # while the index run is writing
    _finish(remove), _finish(index)
    assert index.returncode == 0

    roots, paths = _state(library, env)
    # The remove came second: nothing of the folder is left, neither its root nor an orphan.
    assert roots == {str(tmp_path / "keep")}
    assert paths == {str(p) for p in keep}
    assert all(any(path_in_folder(p, r) for r in roots) for p in paths)
    del files
