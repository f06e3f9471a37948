"""The library map: a 2-D position and a sprite-sheet cell for every image, kept in the library.

Stored under ``<library>/map/<space>/``: ``points.npz`` (ids, content hashes, positions, cells,
mean colours) and ``sheet-NNNN.jpg`` sprite sheets (`map_sheets`). ``points.npz`` also records
the vector space it was made from (model spec, dimension, pipeline parameters, format), so a map
from another space is never shown: it is rebuilt.

`refresh_map` brings the map up to date incrementally. Removed or changed images leave it; new
ones are placed among their nearest already-mapped neighbours (found with the library's own
search), without recomputing the projection. Once the images added or removed since the last
full projection reach `DRIFT` of the map, or when asked, everything is projected again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import atomic_writer
from picmatch.errors import StoreError
from picmatch.map_sheets import SheetWriter
from picmatch.projection import PLACE_NEIGHBOURS, fit_positions, place_near

if TYPE_CHECKING:
    from picmatch.library import Library

FORMAT = 1
DRIFT = 0.25  # share of the map added or removed since the last full projection
READ_CHUNK = 2000
POINTS = "points.npz"


@dataclass(frozen=True)
class MapProgress:
    step: str  # "reading vectors", "projecting", "placing", "thumbnails"
    done: int
    total: int  # 0 while unknown


MapProgressCallback = Callable[[MapProgress], None]


@dataclass(frozen=True)
class LibraryMap:
    """Every mapped image: parallel arrays, one row per image."""

    ids: npt.NDArray[np.int64]
    hashes: npt.NDArray[np.str_]
    xy: npt.NDArray[np.float32]  # n x 2 in [0, 1]
    cells: npt.NDArray[np.int32]  # sprite-sheet cell of each image
    colours: npt.NDArray[np.uint8]  # n x 3 mean colour of its thumbnail
    meta: dict[str, Any]  # space, model, dim, params, format, fitted, changed, version, built_at

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class MapReport:
    full: bool  # projected everything again
    added: int
    removed: int
    total: int
    seconds: float


def map_folder(library: Library) -> Path:
    return library.path / "map" / library.space


def space_identity(library: Library) -> dict[str, Any]:
    space = library.store.get_space(library.space)
    return {
        "format": FORMAT,
        "space": library.space,
        "model": library.model_spec,
        "dim": space.dim if space else 0,
        "params": library.params,
    }


def load_map(library: Library) -> LibraryMap | None:
    """The stored map of the library's current vector space, or None (missing, or stale)."""
    path = map_folder(library) / POINTS
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            stored = LibraryMap(
                ids=data["ids"],
                hashes=data["hashes"],
                xy=data["xy"],
                cells=data["cells"],
                colours=data["colours"],
                meta=meta,
            )
    except (OSError, ValueError, KeyError):
        return None
    identity = space_identity(library)
    if any(meta.get(key) != value for key, value in identity.items()):
        return None
    return stored


def refresh_map(
    library: Library,
    *,
    full: bool = False,
    progress: MapProgressCallback | None = None,
) -> MapReport:
    """Bring the stored map up to date with the library (see the module doc). Blocking."""
    try:
        return _refresh(library, full, progress)
    except OSError as exc:
        raise StoreError(
            f"cannot write the map in {map_folder(library)}: {exc}; check that the library "
            "folder is writable and has free space"
        ) from exc


def _refresh(library: Library, full: bool, progress: MapProgressCallback | None) -> MapReport:
    started = time.perf_counter()
    report = progress or (lambda _: None)
    current = _current_images(library)
    old = None if full else load_map(library)
    if old is not None:
        keep = np.array(
            [
                current.get(int(i), ("", ""))[1] == h
                for i, h in zip(old.ids, old.hashes, strict=True)
            ],
            dtype=bool,
        )
        kept_ids = {int(i) for i in old.ids[keep]}
        added = [i for i in current if i not in kept_ids]
        removed = int((~keep).sum())
        changed = int(old.meta.get("changed", 0)) + len(added) + removed
        fitted = int(old.meta.get("fitted", 0))
        if changed > DRIFT * max(fitted, 1) and (added or removed):
            old = None
    if old is None:
        result = _full(library, current, report)
        done = MapReport(True, len(current), 0, len(result), 0.0)
    else:
        result = _incremental(library, old, keep, added, current, report)
        result = replace(result, meta={**result.meta, "changed": changed})
        done = MapReport(False, len(added), removed, len(result), 0.0)
    if old is None or added or removed:
        _save(library, result, _stored_version(library))
    return replace(done, seconds=time.perf_counter() - started)


# ---- the two ways of refreshing


def _full(
    library: Library, current: dict[int, tuple[str, str]], report: MapProgressCallback
) -> LibraryMap:
    ids = np.fromiter(current.keys(), np.int64, len(current))
    vectors = _read_vectors(library, ids, report)
    report(MapProgress("projecting", 0, 0))
    xy = fit_positions(
        vectors, progress=lambda done, total: report(MapProgress("projecting", done, total))
    )
    sheets = SheetWriter(map_folder(library), max_pixels=library.max_pixels)
    cells = np.arange(len(ids), dtype=np.int32)
    colours = sheets.render([current[int(i)][0] for i in ids], cells, report, fresh=True)
    meta = {**space_identity(library), "fitted": len(ids), "changed": 0}
    hashes = np.array([current[int(i)][1] for i in ids], dtype=np.str_)
    return LibraryMap(ids, hashes, xy, cells, colours, meta)


def _incremental(
    library: Library,
    old: LibraryMap,
    keep: npt.NDArray[np.bool_],
    added: list[int],
    current: dict[int, tuple[str, str]],
    report: MapProgressCallback,
) -> LibraryMap:
    kept = LibraryMap(
        old.ids[keep], old.hashes[keep], old.xy[keep], old.cells[keep], old.colours[keep], old.meta
    )
    if not added:
        return kept
    new_ids = np.asarray(added, np.int64)
    vectors = _read_vectors(library, new_ids, report)
    xy = _place(library, kept, vectors, report)
    free = sorted(set(range(int(old.cells.max(initial=-1)) + 1)) - {int(c) for c in kept.cells})
    need = len(new_ids) - len(free)
    start = int(old.cells.max(initial=-1)) + 1
    cells = np.asarray(free[: len(new_ids)] + list(range(start, start + max(0, need))), np.int32)
    sheets = SheetWriter(map_folder(library), max_pixels=library.max_pixels)
    colours = sheets.render([current[int(i)][0] for i in new_ids], cells, report, fresh=False)
    hashes = np.array([current[int(i)][1] for i in new_ids], dtype=np.str_)
    return LibraryMap(
        np.concatenate([kept.ids, new_ids]),
        np.concatenate([kept.hashes, hashes]).astype(np.str_),
        np.concatenate([kept.xy, xy]).astype(np.float32),
        np.concatenate([kept.cells, cells]).astype(np.int32),
        np.concatenate([kept.colours, colours]).astype(np.uint8),
        kept.meta,
    )


def _place(
    library: Library,
    kept: LibraryMap,
    vectors: npt.NDArray[np.float32],
    report: MapProgressCallback,
) -> npt.NDArray[np.float32]:
    """Positions of new vectors: among their nearest mapped neighbours, by the library's search
    (the new images are in the index already, so ask for extra hits and skip unmapped ones)."""
    where = {int(i): n for n, i in enumerate(kept.ids)}
    k = PLACE_NEIGHBOURS * 4
    neighbour_xy = np.full((len(vectors), k, 2), np.nan, np.float32)
    scores = np.zeros((len(vectors), k), np.float32)
    for start in range(0, len(vectors), READ_CHUNK):
        block = vectors[start : start + READ_CHUNK]
        hits = library.store.search(library.space, block, min(k, max(1, library.count())))
        for row, row_hits in enumerate(hits):
            mapped = [(where[h.id], h.score) for h in row_hits if h.id in where]
            for j, (n, score) in enumerate(mapped[:PLACE_NEIGHBOURS]):
                neighbour_xy[start + row, j] = kept.xy[n]
                scores[start + row, j] = score
        report(MapProgress("placing", min(start + READ_CHUNK, len(vectors)), len(vectors)))
    return place_near(neighbour_xy, scores, seed=len(kept))


# ---- library access and storage


def _current_images(library: Library) -> dict[int, tuple[str, str]]:
    """id -> (path, content hash) of every indexed image."""
    if library.store.get_space(library.space) is None:
        return {}
    return {i: (p.path, p.content_hash) for i, p in library.store.iter_payloads(library.space)}


def _read_vectors(
    library: Library, ids: npt.NDArray[np.int64], report: MapProgressCallback
) -> npt.NDArray[np.float32]:
    space = library.store.get_space(library.space)
    out = np.zeros((len(ids), space.dim if space else 0), np.float32)
    for start in range(0, len(ids), READ_CHUNK):
        chunk: Sequence[int] = ids[start : start + READ_CHUNK].tolist()
        for n, record in enumerate(library.store.get(library.space, chunk)):
            out[start + n] = record.vector
        report(MapProgress("reading vectors", min(start + READ_CHUNK, len(ids)), len(ids)))
    return out


def _stored_version(library: Library) -> int:
    """The version counter of the stored map, whatever its space (0: none)."""
    try:
        with np.load(map_folder(library) / POINTS, allow_pickle=False) as data:
            return int(json.loads(str(data["meta"])).get("version", 0))
    except (OSError, ValueError, KeyError):
        return 0


def _save(library: Library, result: LibraryMap, previous: int) -> None:
    """Write points.npz atomically; `version` counts every change (it busts cached sheets)."""
    meta = {**result.meta, "version": previous + 1}
    meta["built_at"] = time.time()
    with atomic_writer(map_folder(library) / POINTS) as f:
        np.savez(
            f,
            ids=result.ids,
            hashes=result.hashes.astype(np.str_),
            xy=result.xy,
            cells=result.cells,
            colours=result.colours,
            meta=np.array(json.dumps(meta)),
        )
