"""A FAISS index over record ids, derived from the SQLite store and rebuildable at any time.

Up to `HNSW_ABOVE` live vectors the index is exact (`IndexFlatIP` storage, scored with BLAS,
narrowed by an 8-bit coarse scan from `COARSE_ABOVE` on: recall 1.0, ~17 ms per query at
100k x 1280 on 2 cores); past that it is rebuilt once as HNSW (`IndexHNSWFlat`), whose latency
grows with log(n). Measured here on 100k random 1280-d unit vectors, HNSW (M=32) needed
efSearch 8192 (116 ms) to reach recall@10 0.95, because random vectors have no neighbourhood
structure; image embeddings do, which is what HNSW relies on. So exact search is used for as
long as it is fast enough.

FAISS indexes cannot remove vectors cheaply, so the index addresses *slots*: every added
vector gets the next slot number, `slot_ids[slot]` is its record id and `live[slot]` says
whether it still counts. Replacing or deleting a record kills its old slot; searches only
visit live slots (an `IDSelectorBitmap`), and the index is compacted (rebuilt) when too many
slots are dead.

On disk an index is two files beside the database, written atomically and in this order:
`<space>.<token>.faiss` (the graph and vectors) and `<space>.hnsw.npz` (generation, token,
slot ids, live flags). The `.npz` names the `.faiss` it belongs to, so a crash between the two
writes leaves either the old pair or the new pair, never a mix.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import atomic_save, atomic_writer
from picmatch._sys import faiss as _faiss
from picmatch.store.base import FloatArray
from picmatch.store.coarse_scan import CoarseScan

HNSW_M = 32
EF_CONSTRUCTION = 80
MIN_EF_SEARCH = 96
HNSW_ABOVE = 100_000  # live vectors; below this the index is exact
COARSE_ABOVE = 20_000  # live vectors; from here exact search starts from an 8-bit coarse scan
EXACT_BELOW = 4096  # filtered subsets this small are searched exactly even in an HNSW index
COMPACT_DEAD_SHARE = 0.25


@dataclass
class VectorIndex:
    """In-memory FAISS index plus its slot bookkeeping, reflecting store generation `generation`."""

    dim: int
    generation: int = 0
    index: Any = None
    hnsw_above: int = HNSW_ABOVE
    coarse_above: int = COARSE_ABOVE
    slot_ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    live: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    slot_of: dict[int, int] = field(default_factory=dict)
    coarse: CoarseScan | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = _faiss().IndexFlatIP(self.dim)
        if not self.slot_of:
            self.slot_of = {int(i): s for s, i in enumerate(self.slot_ids) if self.live[s]}

    @property
    def is_hnsw(self) -> bool:
        return hasattr(self.index, "hnsw")

    @property
    def live_count(self) -> int:
        return len(self.slot_of)

    @property
    def dead_count(self) -> int:
        return len(self.slot_ids) - len(self.slot_of)

    def needs_compaction(self) -> bool:
        return self.dead_count > 1000 and self.dead_count > COMPACT_DEAD_SHARE * len(self.slot_ids)

    def add(self, ids: npt.NDArray[np.int64], vectors: FloatArray) -> None:
        """Add or replace records."""
        if len(ids) == 0:
            return
        self.remove(ids)
        if not self.is_hnsw and self.live_count + len(ids) > self.hnsw_above:
            self._become_hnsw()
        first = len(self.slot_ids)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.slot_ids = np.concatenate([self.slot_ids, ids.astype(np.int64)])
        self.live = np.concatenate([self.live, np.ones(len(ids), np.bool_)])
        for offset, record_id in enumerate(ids.tolist()):
            self.slot_of[record_id] = first + offset

    def _become_hnsw(self) -> None:
        """Rebuild as HNSW from the live vectors (once, when the space outgrows exact search)."""
        faiss = _faiss()
        self.drop_coarse()
        live = np.flatnonzero(self.live)
        vectors = self.index.reconstruct_batch(live) if len(live) else None
        self.index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        if vectors is not None:
            self.index.add(vectors)
        self.slot_ids = self.slot_ids[live]
        self.live = np.ones(len(live), np.bool_)
        self.slot_of = {int(i): s for s, i in enumerate(self.slot_ids)}

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        for record_id in ids.tolist():
            slot = self.slot_of.pop(record_id, None)
            if slot is not None:
                self.live[slot] = False

    def search(
        self,
        queries: FloatArray,
        k: int,
        allowed: npt.NDArray[np.int64] | None = None,
        excluded: Collection[int] = (),
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Top-k (scores, record ids) per query among `allowed` ids (None: all) but `excluded`;
        id -1 pads rows with fewer than k hits."""
        n = len(queries)
        if self.live_count == 0:
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        slots = self._without(self._candidate_slots(allowed), excluded)
        if not self.is_hnsw or (slots is not None and len(slots) <= EXACT_BELOW):
            return self._exact(queries, k, slots)
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(MIN_EF_SEARCH, 2 * k)
        if slots is not None or self.dead_count:
            mask = self.live if slots is None else _mask(len(self.live), slots)
            bitmap = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        scores, found = self.index.search(np.ascontiguousarray(queries), k, params=params)
        ids = np.where(found >= 0, self.slot_ids[np.maximum(found, 0)], -1)
        return scores.astype(np.float32).reshape(n, k), ids.reshape(n, k)

    def _without(
        self, slots: npt.NDArray[np.int64] | None, excluded: Collection[int]
    ) -> npt.NDArray[np.int64] | None:
        """`slots` (None: every live slot) less the slots of the `excluded` record ids."""
        drop = [self.slot_of[i] for i in excluded if i in self.slot_of]
        if not drop:
            return slots
        keep = self.live.copy() if slots is None else _mask(len(self.live), slots)
        keep[drop] = False
        return np.flatnonzero(keep).astype(np.int64)

    def _candidate_slots(
        self, allowed: npt.NDArray[np.int64] | None
    ) -> npt.NDArray[np.int64] | None:
        if allowed is None:
            return None
        slots = [self.slot_of[i] for i in allowed.tolist() if i in self.slot_of]
        return np.array(sorted(slots), dtype=np.int64)

    def _exact(
        self, queries: FloatArray, k: int, slots: npt.NDArray[np.int64] | None
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Exhaustive search over the stored vectors (read in place, never copied whole).

        A small candidate set is scored directly; a large flat index is first narrowed by the
        8-bit coarse scan; otherwise BLAS scores everything on all CPUs (at 100k x 1280 a query
        takes ~32 ms here, against ~65 ms for FAISS's flat search, which uses one thread for
        one query)."""
        stored = self._stored_vectors()
        if slots is not None and len(slots) <= EXACT_BELOW:
            return _rescore(queries, k, stored, self.slot_ids, [slots] * len(queries))
        mask = None
        if slots is not None or self.dead_count:
            mask = self.live if slots is None else _mask(len(self.live), slots)
        if self.live_count >= self.coarse_above:
            coarse = self._coarse_scan(stored)
            found = [np.unique(coarse.candidates(q, k, mask)) for q in queries]
            return _rescore(queries, k, stored, self.slot_ids, found)
        return _scan_all(queries, k, stored, self.slot_ids, mask)

    def _coarse_scan(self, stored: FloatArray) -> CoarseScan:
        if self.coarse is None:
            self.coarse = CoarseScan(stored)
        else:
            self.coarse.extend(stored)
        return self.coarse

    def drop_coarse(self) -> None:
        if self.coarse is not None:
            self.coarse.close()
            self.coarse = None

    def _stored_vectors(self) -> FloatArray:
        """A read-only (ntotal, dim) view of the index's own float32 storage."""
        faiss = _faiss()
        flat = faiss.downcast_index(self.index.storage) if self.is_hnsw else self.index
        total = int(flat.ntotal)
        if total == 0:
            return np.zeros((0, self.dim), np.float32)
        view: FloatArray = faiss.rev_swig_ptr(flat.get_xb(), total * self.dim)
        return view.reshape(total, self.dim)

    def save(self, folder: Path, space: str) -> None:
        faiss = _faiss()
        token = secrets.token_hex(6)
        graph = folder / f"{space}.{token}.faiss"
        atomic_save(graph, lambda name: faiss.write_index(self.index, name))
        with atomic_writer(folder / f"{space}.hnsw.npz") as f:
            np.savez(
                f,
                generation=np.int64(self.generation),
                token=np.array(token),
                dim=np.int64(self.dim),
                slot_ids=self.slot_ids,
                live=self.live,
            )
        for old in folder.glob(f"{space}.*.faiss"):
            if old != graph:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, space: str, dim: int) -> VectorIndex | None:
        """The saved index, or None if there is none or it is unreadable."""
        meta_path = folder / f"{space}.hnsw.npz"
        try:
            with np.load(meta_path) as meta:
                token = str(meta["token"])
                generation = int(meta["generation"])
                saved_dim = int(meta["dim"])
                slot_ids = meta["slot_ids"].astype(np.int64)
                live = meta["live"].astype(np.bool_)
            index = _faiss().read_index(str(folder / f"{space}.{token}.faiss"))
        except (OSError, KeyError, ValueError, RuntimeError):
            return None
        if saved_dim != dim or index.ntotal != len(slot_ids):
            return None
        return cls(dim=dim, generation=generation, index=index, slot_ids=slot_ids, live=live)

    @staticmethod
    def remove_files(folder: Path, space: str) -> None:
        for path in [*folder.glob(f"{space}.*.faiss"), folder / f"{space}.hnsw.npz"]:
            path.unlink(missing_ok=True)


def _rescore(
    queries: FloatArray,
    k: int,
    stored: FloatArray,
    slot_ids: npt.NDArray[np.int64],
    candidates: list[npt.NDArray[np.int64]],
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Exact top-k of each query among its own candidate slots."""
    scores = np.full((len(queries), k), -np.inf, np.float32)
    ids = np.full((len(queries), k), -1, np.int64)
    for row, (query, slots) in enumerate(zip(queries, candidates, strict=True)):
        if len(slots) == 0:
            continue
        sims = stored[slots] @ query
        order = np.argsort(-sims, kind="stable")[:k]
        scores[row, : len(order)] = sims[order]
        ids[row, : len(order)] = slot_ids[slots[order]]
    return scores, ids


def _scan_all(
    queries: FloatArray,
    k: int,
    stored: FloatArray,
    slot_ids: npt.NDArray[np.int64],
    mask: npt.NDArray[np.bool_] | None,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Exact top-k over every stored vector allowed by `mask` (None: all), with BLAS."""
    n = len(queries)
    scores = np.full((n, k), -np.inf, np.float32)
    ids = np.full((n, k), -1, np.int64)
    allowed = len(stored) if mask is None else int(mask[: len(stored)].sum())
    if allowed == 0:
        return scores, ids
    sims = stored @ queries.T  # (slots, queries)
    if mask is not None:
        sims[~mask[: len(stored)]] = -np.inf
    take = min(k, allowed)
    top = np.argpartition(-sims, take - 1, axis=0)[:take].T  # (queries, take), unordered
    top_scores = np.take_along_axis(sims.T, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    scores[:, :take] = np.take_along_axis(top_scores, order, axis=1)
    ids[:, :take] = slot_ids[np.take_along_axis(top, order, axis=1)]
    return scores, ids


def _mask(size: int, slots: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(size, np.bool_)
    mask[slots] = True
    return mask
