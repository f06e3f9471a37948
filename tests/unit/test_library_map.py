"""The library map: projection, incremental refresh, storage, with the real model and openTSNE."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picmatch import Library
from picmatch.errors import MissingDependencyError
from picmatch.map_sheets import CELL, PER_SIDE, SHEET_SIDE, sheet_name
from picmatch.map_store import DRIFT, POINTS, load_map, map_folder, refresh_map
from picmatch.projection import fit_positions, place_near
from tests.map_images import separation, write_families

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]
PER_FAMILY = 30


def _families(lib: Library, photos: Path) -> np.ndarray:
    stored = load_map(lib)
    assert stored is not None
    paths = {i: p.path for i, p in lib.store.iter_payloads(lib.space)}
    return np.array(["/sunsets/" in paths[int(i)] for i in stored.ids])


def test_a_full_map_separates_two_families_and_draws_every_tile(
    open_lib: OpenLib, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    write_families(photos, PER_FAMILY)
    lib = open_lib()
    lib.index([photos])
    steps: list[str] = []
    report = refresh_map(lib, progress=lambda p: steps.append(p.step))
    assert (report.full, report.added, report.total) == (True, 2 * PER_FAMILY, 2 * PER_FAMILY)
    assert {"reading vectors", "projecting", "thumbnails"} <= set(steps)

    stored = load_map(lib)
    assert stored is not None and len(stored) == 2 * PER_FAMILY
    assert stored.xy.min() >= 0 and stored.xy.max() <= 1
    within, between = separation(stored.xy, _families(lib, photos))
    assert between > 2 * within, (within, between)

    # Each image's tile sits in its cell of the sheet: a sunset's tile is warm, a grid's cool.
    sunsets = _families(lib, photos)
    with Image.open(map_folder(lib) / sheet_name(0)) as sheet:
        assert sheet.size == (SHEET_SIDE, SHEET_SIDE)
        pixels = np.asarray(sheet.convert("RGB"), np.float32)
    for cell, warm in zip(stored.cells, sunsets, strict=True):
        y, x = divmod(int(cell), PER_SIDE)
        red, _, blue = pixels[y * CELL : (y + 1) * CELL, x * CELL : (x + 1) * CELL].mean((0, 1))
        assert (red > blue) == warm
    assert np.array_equal(stored.colours[:, 0] > stored.colours[:, 2], sunsets)


def test_new_images_are_placed_beside_their_family_without_a_full_projection(
    open_lib: OpenLib, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    write_families(photos, PER_FAMILY)
    lib = open_lib()
    lib.index([photos])
    refresh_map(lib)
    before = load_map(lib)
    assert before is not None

    more = tmp_path / "more"
    added = write_families(more, 2, start=100)
    lib.index([more])
    report = refresh_map(lib)
    assert (report.full, report.added, report.removed, report.total) == (False, 4, 0, 64)
    after = load_map(lib)
    assert after is not None
    old = {int(i): xy for i, xy in zip(before.ids, before.xy, strict=True)}
    assert all(
        np.allclose(old[int(i)], xy)
        for i, xy in zip(after.ids, after.xy, strict=True)
        if int(i) in old
    ), "mapped images stay where they were"
    assert len(set(after.cells.tolist())) == len(after), "every image has its own cell"

    sunsets = _families(lib, photos)
    centre = {True: after.xy[sunsets].mean(0), False: after.xy[~sunsets].mean(0)}
    paths = {i: p.path for i, p in lib.store.iter_payloads(lib.space)}
    new_paths = {str(p) for ps in added.values() for p in ps}
    for i, xy in zip(after.ids, after.xy, strict=True):
        if paths[int(i)] in new_paths:
            own = "/sunsets/" in paths[int(i)]
            assert np.linalg.norm(xy - centre[own]) < np.linalg.norm(xy - centre[not own])


def test_removed_images_leave_the_map_and_a_drifted_map_is_projected_again(
    open_lib: OpenLib, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    write_families(photos, PER_FAMILY)
    lib = open_lib()
    lib.index([photos])
    refresh_map(lib)
    gone = sorted((photos / "grids").iterdir())[:3]
    for path in gone:
        path.unlink()
    lib.index([photos])
    report = refresh_map(lib)
    assert (report.full, report.added, report.removed, report.total) == (False, 0, 3, 57)
    stored = load_map(lib)
    assert stored is not None and len(stored) == 57

    unchanged = refresh_map(lib)
    assert (unchanged.full, unchanged.added, unchanged.removed) == (False, 0, 0)

    # Adding more than DRIFT of the map since the last full projection projects all again.
    more = tmp_path / "more"
    write_families(more, int(DRIFT * 60) // 2 + 1, start=200)
    lib.index([more])
    assert refresh_map(lib).full


def test_a_map_from_another_vector_space_is_not_shown(open_lib: OpenLib, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_families(photos, 3)
    lib = open_lib()
    lib.index([photos])
    refresh_map(lib)
    assert load_map(lib) is not None
    points = map_folder(lib) / POINTS
    with np.load(points) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "params": {"power": "1.0"}}))
    np.savez(points, **arrays)
    assert load_map(lib) is None
    assert refresh_map(lib).full


def test_small_libraries_get_a_map_without_tsne(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.random((7, 16), dtype=np.float32)  # below MIN_FOR_TSNE
    xy = fit_positions(vectors)
    assert xy.shape == (7, 2) and xy.min() >= 0 and xy.max() <= 1
    assert fit_positions(vectors[:1]).shape == (1, 2)
    assert fit_positions(vectors[:0]).shape == (0, 2)


def test_placement_follows_the_most_similar_neighbours() -> None:
    neighbours = np.array(
        [
            [[0.1, 0.1], [0.9, 0.9], [0.11, 0.1]],  # two beside each other, one far away
            [[np.nan, np.nan], [np.nan, np.nan], [np.nan, np.nan]],
        ]
    )
    scores = np.array([[0.95, 0.94, 0.9], [0.0, 0.0, 0.0]], np.float32)
    xy = place_near(neighbours.astype(np.float32), scores)
    assert np.linalg.norm(xy[0] - [0.1, 0.1]) < 0.02, "not between the two clusters"
    assert np.linalg.norm(xy[1] - [0.5, 0.5]) < 0.02


def test_without_opentsne_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openTSNE", None)  # what Python does when it is missing
    vectors = np.random.default_rng(0).random((60, 8), dtype=np.float32)
    with pytest.raises(MissingDependencyError, match=r"pip install 'picmatch\[map\]'"):
        fit_positions(vectors)


def test_the_map_folder_moves_with_the_library(open_lib: OpenLib, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_families(photos, 2)
    lib = open_lib()
    lib.index([photos])
    refresh_map(lib)
    assert (lib.path / "map" / lib.space / POINTS).is_file()
    assert map_folder(lib).parent.parent == lib.path
    shutil.rmtree(map_folder(lib))
    assert load_map(lib) is None
