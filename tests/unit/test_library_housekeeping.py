"""What a library leaves on disk: its own folder is never indexed, and a shared model cache
stays readable by other users (issue 7, fault 13)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from picmatch import Library
from picmatch.models.registry import load_embedder
from tests.imagegen import synthetic, write_photos

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]


def test_a_library_inside_an_indexed_folder_does_not_index_itself(
    tmp_path: Path, model_cache: Path
) -> None:
    from picmatch import open_library

    photos = tmp_path / "photos"
    write_photos(photos, ("chelsea", "coffee", "rocket"))
    lib = open_library(photos / "picmatch-library", cache_dir=model_cache)
    assert lib.index([photos]).added == 3
    thumbs = photos / "picmatch-library" / "thumbnails" / "ab"
    thumbs.mkdir(parents=True)
    synthetic(3).save(thumbs / "abcdef0123456789-00-256.jpg")  # what the server caches
    report = lib.index([photos])
    assert (report.added, report.unchanged) == (0, 3)
    assert lib.count() == 3
    lib.close()


def test_the_cached_model_is_readable_by_other_users(tmp_path: Path) -> None:
    load_embedder("efficientnet-lite0", cache_dir=tmp_path / "models")
    files = [p for p in (tmp_path / "models").rglob("*") if p.is_file()]
    assert files
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o044 == 0o044, f"{path.name} is {oct(mode)}"
