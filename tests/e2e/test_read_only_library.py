"""A library the user can only read can be searched and described (issue 7).

The library is built on a tmpfs, then the mount is made read-only: a true read-only file system,
even for root (who ignores permission bits).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagegen import synthetic

pytestmark = [pytest.mark.model, pytest.mark.e2e]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "mnt"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(where)], check=False
    )
    if made.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _picmatch(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PICMATCH_CACHE_DIR": str(cache), "PICMATCH_CONFIG": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-m", "picmatch.cli", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_search_and_info_work_on_a_read_only_library(
    mount: Path, tmp_path: Path, model_cache: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):
        synthetic(i).save(photos / f"img{i:02d}.jpg")
    library = str(mount / "lib")
    built = _picmatch("index", str(photos), "--library", library, "-q", cache=model_cache)
    assert built.returncode == 0, built.stderr
    synthetic(99).save(photos / "new.jpg")
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)

    found = _picmatch("search", str(photos / "img03.jpg"), "--library", library, "--json",
                      "--in", str(photos), cache=model_cache)  # fmt: skip
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["path"] == str(photos / "img03.jpg") and hits[0]["score"] > 0.999
    unindexed = _picmatch("search", str(photos / "new.jpg"), "--library", library, "-k", "3",
                          cache=model_cache)  # fmt: skip
    assert unindexed.returncode == 0, unindexed.stderr
    info = _picmatch("info", "--library", library, "--json", cache=model_cache)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["images"] == 12
    assert json.loads(info.stdout)["roots"] == [str(photos)]

    refused = _picmatch("index", str(photos), "--library", library, "-q", cache=model_cache)
    assert refused.returncode == 7 and "Traceback" not in refused.stderr
    assert "read-only" in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
