"""Indexing and searching through the public `Library` API, with the real default model."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from picmatch import Library
from picmatch.errors import ConfigError, ImageDecodeError, LibraryNotFoundError, NotIndexedError
from tests.imagegen import crop_center, photo, synthetic

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]


def test_index_then_search_finds_the_original_of_an_edited_copy(
    open_lib: OpenLib, photo_dir: Path, tmp_path: Path
) -> None:
    lib = open_lib()
    report = lib.index([photo_dir])
    assert (report.added, report.embedded, report.skipped) == (14, 14, [])
    query = tmp_path / "query.jpg"
    crop_center(photo("chelsea"), 0.7).transpose(0).save(query, quality=60)  # crop + flip
    hits = lib.search(query, k=5)
    assert hits[0].path == str(photo_dir / "chelsea.jpg")
    assert hits[0].score > hits[1].score + 0.05
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert (hits[0].width, hits[0].height) == (451, 300)


def test_search_by_indexed_path_uses_the_stored_vector(
    open_lib: OpenLib, photo_dir: Path, library_dir: Path, model_cache: Path
) -> None:
    open_lib().index([photo_dir])
    from picmatch import open_library

    with open_library(library_dir, cache_dir=model_cache) as fresh:
        hits = fresh.search(photo_dir / "rocket.jpg", k=3)
        assert fresh._embedders._loaded == {}  # no model needed
    assert hits[0].path == str(photo_dir / "rocket.jpg")
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_reindex_touches_only_what_changed(open_lib: OpenLib, photo_dir: Path) -> None:
    lib = open_lib()
    lib.index([photo_dir])
    again = lib.index([photo_dir])
    assert (again.unchanged, again.added, again.embedded) == (14, 0, 0)

    synthetic(1).save(photo_dir / "coffee.jpg")  # changed content, same path
    (photo_dir / "sub").mkdir()
    shutil.move(photo_dir / "rocket.jpg", photo_dir / "sub" / "rocket-renamed.jpg")  # a move
    shutil.copy(photo_dir / "moon.jpg", photo_dir / "moon-copy.jpg")  # an exact duplicate
    (photo_dir / "clock.jpg").unlink()  # a deletion
    synthetic(2).save(photo_dir / "new.png")  # a new file
    report = lib.index([photo_dir])

    assert (report.updated, report.moved, report.removed, report.added) == (1, 1, 1, 2)
    assert report.embedded == 2  # only coffee (changed) and new.png went through the model
    assert lib.count() == 15  # 14 - clock + moon-copy + new.png
    paths = {h.path for h in lib.search(photo_dir / "moon.jpg", k=20)}
    assert str(photo_dir / "clock.jpg") not in paths
    assert str(photo_dir / "rocket.jpg") not in paths
    assert str(photo_dir / "sub" / "rocket-renamed.jpg") in paths
    moon = lib.search(photo_dir / "moon.jpg", k=2)
    assert {h.path for h in moon} == {str(photo_dir / "moon.jpg"), str(photo_dir / "moon-copy.jpg")}
    assert moon[0].score == pytest.approx(moon[1].score, abs=1e-6)


def test_a_folder_moved_to_a_new_root_is_not_embedded_again(
    open_lib: OpenLib, photo_dir: Path, tmp_path: Path
) -> None:
    lib = open_lib()
    lib.index([photo_dir])
    moved = tmp_path / "elsewhere" / "photos-2024"
    moved.parent.mkdir()
    shutil.move(photo_dir, moved)
    shutil.copy(moved / "moon.jpg", moved / "moon-again.jpg")  # a copy, not a move
    report = lib.index([moved])
    assert (report.moved, report.added, report.removed, report.embedded) == (14, 1, 0, 0)
    assert lib.count() == 15
    assert lib.stats().roots == (str(moved),)  # the emptied old root is forgotten
    hits = lib.search(moved / "chelsea.jpg", k=20)
    assert all(h.path.startswith(str(moved)) for h in hits)


def test_bad_files_are_skipped_with_reasons(open_lib: OpenLib, photo_dir: Path) -> None:
    data = (photo_dir / "astronaut.jpg").read_bytes()
    (photo_dir / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (photo_dir / "empty.jpg").write_bytes(b"")
    (photo_dir / "notes.JPG").write_text("not an image at all")
    (photo_dir / "noise.png").write_bytes(bytes(range(256)) * 10)
    lib = open_lib()
    report = lib.index([photo_dir])
    skipped = dict(report.skipped)
    assert set(skipped) == {
        str(photo_dir / n) for n in ("truncated.jpg", "empty.jpg", "notes.JPG", "noise.png")
    }
    assert all(reason for reason in skipped.values())
    assert report.added == 14
    again = lib.index([photo_dir])
    assert len(again.skipped) == 4 and again.embedded == 0

    (photo_dir / "moon.jpg").write_bytes(b"garbage now")  # an indexed file goes bad
    third = lib.index([photo_dir])
    assert str(photo_dir / "moon.jpg") in dict(third.skipped)
    assert third.removed == 1 and lib.find(photo_dir / "moon.jpg") is None


def test_too_large_image_is_skipped(open_lib: OpenLib, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    synthetic(3, (3000, 2000)).save(folder / "big.png")
    synthetic(4).save(folder / "small.png")
    lib = open_lib(max_pixels=1_000_000)
    report = lib.index([folder])
    assert report.added == 1
    assert [p for p, _ in report.skipped] == [str(folder / "big.png")]
    with pytest.raises(ImageDecodeError):
        lib.search(folder / "big.png")


def test_remove_folder_and_errors(open_lib: OpenLib, photo_dir: Path, tmp_path: Path) -> None:
    lib = open_lib()
    lib.index([photo_dir])
    assert lib.remove([photo_dir / "moon.jpg"]) == 1
    assert lib.count() == 13
    assert lib.remove([photo_dir]) == 13
    assert lib.stats().roots == ()
    with pytest.raises(NotIndexedError):
        lib.index([tmp_path / "missing"])
    with pytest.raises(ConfigError):
        lib.search(photo_dir / "moon.jpg", k=0)


def test_missing_library_and_model_mismatch(library_dir: Path, open_lib: OpenLib) -> None:
    from picmatch import open_library

    with pytest.raises(LibraryNotFoundError):
        open_library(library_dir, create=False)
    open_lib()
    other = open_library(library_dir, model="clip:some/other")  # a space to add at index()
    with pytest.raises(ConfigError, match="has no vectors of clip:some/other; its models are"):
        other.search_vector(np.zeros(1280, np.float32))
    other.close()


def test_folder_filter(open_lib: OpenLib, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for i in range(4):
        synthetic(i).save(a / f"{i}.png")
        synthetic(i).save(b / f"{i}.png")
    lib = open_lib()
    lib.index([a, b])
    hits = lib.search(a / "0.png", k=10, folders=[b])
    assert hits and all(h.path.startswith(str(b) + "/") for h in hits)
    assert hits[0].path == str(b / "0.png")
    assert lib.search(a / "0.png", k=10, min_score=0.999)[0].score >= 0.999


def test_the_search_index_is_built_as_the_last_phase_of_an_index_run(
    open_lib: OpenLib, photo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from picmatch.indexer import Phase, Progress
    from picmatch.store import vector_index

    monkeypatch.setattr(vector_index, "FLAT_MAX", 8)  # 14 photos: past the exact range
    seen: list[Progress] = []
    lib = open_lib()
    lib.index([photo_dir], progress=seen.append)
    assert seen[-1] == Progress(Phase.INDEX, 14, 14)
    assert [p.phase for p in seen].index(Phase.INDEX) > [p.phase for p in seen].index(Phase.EMBED)
    index = lib.stats().index
    assert index["kind"] == "ivf-sq8" and index["vectors"] == 14
    hits = lib.search(photo_dir / "chelsea.jpg", k=3)
    assert hits[0].path == str(photo_dir / "chelsea.jpg")
