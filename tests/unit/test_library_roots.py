"""The indexed roots live in the store: every open library sees the current list (issue 7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from picmatch import Library, open_library
from picmatch.errors import FormatError
from picmatch.manifest import FORMAT_VERSION, MANIFEST
from tests.imagegen import synthetic

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]


def _folder(path: Path, seed: int) -> Path:
    path.mkdir(parents=True)
    synthetic(seed).save(path / f"img{seed}.jpg")
    return path


def test_libraries_opened_earlier_see_roots_added_since(open_lib: OpenLib, tmp_path: Path) -> None:
    a, b = _folder(tmp_path / "a", 1), _folder(tmp_path / "b", 2)
    first, second = open_lib(), open_lib()  # like a server and a CLI run on one library
    first.index([a])
    second.index([b])
    assert first.roots == second.roots == (a, b)
    second.remove([a])
    assert first.roots == (b,)
    assert first.count() == 1


def test_a_format_1_library_moves_its_roots_into_the_store(
    open_lib: OpenLib, library_dir: Path, model_cache: Path, tmp_path: Path
) -> None:
    a = _folder(tmp_path / "a", 1)
    lib = open_lib()
    lib.index([a])
    lib.store.remove_roots([str(a)])
    manifest = json.loads((library_dir / MANIFEST).read_text())
    assert manifest["format"] == FORMAT_VERSION and "roots" not in manifest
    # What an older picmatch wrote: format 1, the roots in library.json, none in the store.
    old = {**manifest, "format": 1, "roots": [str(a), str(tmp_path / "b")]}
    (library_dir / MANIFEST).write_text(json.dumps(old))
    with open_library(library_dir, cache_dir=model_cache) as lib:
        assert lib.roots == (a, tmp_path / "b")
    upgraded = json.loads((library_dir / MANIFEST).read_text())
    assert upgraded["format"] == FORMAT_VERSION and "roots" not in upgraded


def test_a_newer_library_is_refused_with_what_to_do(
    open_lib: OpenLib, library_dir: Path, model_cache: Path
) -> None:
    open_lib()
    manifest = json.loads((library_dir / MANIFEST).read_text())
    manifest["format"] = FORMAT_VERSION + 1
    (library_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="newer picmatch"):
        open_library(library_dir, cache_dir=model_cache)
