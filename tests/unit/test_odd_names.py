"""File and folder names that are not valid UTF-8 (Linux allows any bytes but / and NUL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from picmatch import Library
from picmatch._sys import display_path
from tests.imagegen import synthetic, write_photos

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]
ODD_FOLDER = os.fsdecode(b"NAS copy \xe9t\xe9")  # Latin-1 bytes, as old NAS and cameras write
ODD_FILE = os.fsdecode(b"IMG_\xff\xfe.jpg")


def _odd_tree(base: Path) -> tuple[Path, Path, Path]:
    """Good photos, an odd folder, and an odd file name next to good ones."""
    root = base / "photos"
    write_photos(root, ("chelsea", "coffee", "rocket", "moon"))
    odd_dir = root / ODD_FOLDER
    write_photos(odd_dir, ("astronaut", "camera"))
    odd_file = root / ODD_FILE
    synthetic(7).save(odd_file, format="JPEG")
    return root, odd_dir, odd_file


def test_odd_names_are_indexed_searched_and_removed(open_lib: OpenLib, tmp_path: Path) -> None:
    root, odd_dir, odd_file = _odd_tree(tmp_path)
    lib = open_lib()
    report = lib.index([root])
    assert (report.added, report.skipped) == (7, [])
    assert lib.index([root]).unchanged == 7  # paths round-trip exactly: nothing looks changed

    hit = lib.search(odd_file, k=1)[0]
    assert hit.path == str(odd_file) and hit.score == pytest.approx(1.0, abs=1e-5)
    inside = lib.search(root / "moon.jpg", k=10, folders=[odd_dir])
    assert {h.path for h in inside} == {str(odd_dir / "astronaut.jpg"), str(odd_dir / "camera.jpg")}

    shown = display_path(str(odd_file))
    assert shown.endswith("IMG_\\xff\\xfe.jpg") and shown.encode("utf-8")
    found = lib.find(shown)  # the form printed and sent as JSON leads back to the file
    assert found is not None and found.path == str(odd_file)

    assert lib.remove([odd_dir]) == 2
    assert lib.count() == 5
