"""A FAISS index over record ids, derived from the SQLite store and rebuildable at any time.

Its kind follows the number of live vectors:
- up to `FLAT_MAX` (100k) it is exact: `IndexFlatIP` storage scored with BLAS, narrowed by
  an 8-bit coarse scan from `COARSE_ABOVE` on (recall 1.0, ~17 ms a query at 100k x 1280 on
  2 cores);
- above, it is approximate (`ivf_sq8`): an inverted file over 8-bit PCA codes with a
  calibrated number of probed lists, re-ranked with 8-bit codes of the whole vectors, then
  re-scored exactly from full-precision vectors fetched from the store (they stay on disk,
  never whole in the heap).
Exact search cannot stay fast past 100k (its bytes per query grow with n), and HNSW keeps every
float32 vector in memory (5.4 GB at 1M) and builds for minutes; see benchmarks/search_latency.py.

Building, changing kind and retraining happen only in `build_*` (called from the store's
`flush()`, i.e. at the end of `picmatch index` or a server job), never inside a search:
`add` only appends (an exact index may grow past `FLAT_MAX` until the next flush; an IVF
index encodes new vectors into its trained lists, so they are searchable at once).

FAISS indexes cannot remove vectors cheaply, so the index addresses *slots*: every added
vector gets the next slot number, `slot_ids[slot]` is its record id and `live[slot]` says
whether it still counts. Replacing or deleting a record kills its old slot; searches only
visit live slots (an `IDSelectorBitmap`), and the index is rebuilt at the next flush when too
many slots are dead.

On disk an index is two files beside the database, written atomically and in this order:
`<space>.<token>.faiss` (the FAISS index) and `<space>.index.npz` (kind, generation, token,
slot ids, live flags, calibration). The `.npz` names the `.faiss` it belongs to, so a crash
between the two writes leaves either the old pair or the new pair, never a mix.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import atomic_save, atomic_writer
from picmatch._sys import faiss as _faiss
from picmatch.store import ivf_sq8
from picmatch.store.base import FloatArray
from picmatch.store.coarse_scan import CoarseScan

FLAT_MAX = 100_000  # live vectors; up to this the index is exact
COARSE_ABOVE = 20_000  # live vectors; from here exact search starts from an 8-bit coarse scan
EXACT_BELOW = 4096  # filtered subsets this small are scored exactly, whatever the kind
COMPACT_DEAD_SHARE = 0.25
RETRAIN_GROWTH = 2.0  # an IVF index is retrained once the space has grown this much
EXACT, IVF = "exact", "ivf-sq8"
META = "index.npz"

Fetch = Callable[[list[int]], dict[int, FloatArray]]
"""Full-precision vectors of record ids (missing ids are left out)."""
Chunks = Iterable[tuple[npt.NDArray[np.int64], FloatArray]]
Progress = Callable[[int, int], None]


@dataclass
class VectorIndex:
    """In-memory FAISS index plus its slot bookkeeping, reflecting store generation `generation`."""

    dim: int
    generation: int = 0
    index: Any = None
    flat_max: int = field(default_factory=lambda: FLAT_MAX)
    coarse_above: int = COARSE_ABOVE
    slot_ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    live: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    slot_of: dict[int, int] = field(default_factory=dict)
    coarse: CoarseScan | None = field(default=None, repr=False)
    nprobe: int = 0  # IVF: lists probed per query, from calibration
    trained_count: int = 0  # IVF: live vectors when it was trained
    recall: float = 1.0  # recall@10 measured at build time (1.0: exact)
    build_id: str = field(default_factory=lambda: secrets.token_hex(6))  # kept across saves

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = _faiss().IndexFlatIP(self.dim)
        if not self.slot_of:
            live = np.flatnonzero(self.live)
            self.slot_of = dict(zip(self.slot_ids[live].tolist(), live.tolist(), strict=True))

    @property
    def kind(self) -> str:
        return IVF if hasattr(self.index, "refine_index") else EXACT

    @property
    def live_count(self) -> int:
        return len(self.slot_of)

    @property
    def dead_count(self) -> int:
        return len(self.slot_ids) - len(self.slot_of)

    def needs_compaction(self) -> bool:
        return self.dead_count > 1000 and self.dead_count > COMPACT_DEAD_SHARE * len(self.slot_ids)

    def needs_rebuild(self) -> bool:
        """Whether the next flush should rebuild: wrong kind for the size, grown, or gappy."""
        if self.needs_compaction():
            return True
        if self.kind == EXACT:
            return self.live_count > self.flat_max
        return (
            self.live_count > RETRAIN_GROWTH * self.trained_count
            or self.live_count <= self.flat_max // 2
        )

    def wanted_kind(self, count: int) -> str:
        return EXACT if count <= self.flat_max else IVF

    def info(self) -> dict[str, object]:
        """What `picmatch info` shows: kind, vectors, memory, measured recall, settings."""
        out: dict[str, object] = {"kind": self.kind, "vectors": self.live_count}
        if self.kind == IVF:
            lists = ivf_sq8.lists(self.index)
            out.update(
                lists=int(lists.nlist),
                nprobe=self.nprobe,
                pca_dim=int(lists.d),
                memory_bytes=ivf_sq8.memory_bytes(self.index),
                recall_at_10=round(self.recall, 3),
            )
        else:
            out.update(memory_bytes=int(self.index.ntotal) * self.dim * 4, recall_at_10=1.0)
        return out

    def add(self, ids: npt.NDArray[np.int64], vectors: FloatArray) -> None:
        """Add or replace records (never rebuilds: see `needs_rebuild`)."""
        if len(ids) == 0:
            return
        self.remove(ids)
        first = len(self.slot_ids)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.slot_ids = np.concatenate([self.slot_ids, ids.astype(np.int64)])
        self.live = np.concatenate([self.live, np.ones(len(ids), np.bool_)])
        self.slot_of.update(zip(ids.tolist(), range(first, first + len(ids)), strict=True))

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        for record_id in ids.tolist():
            slot = self.slot_of.pop(record_id, None)
            if slot is not None:
                self.live[slot] = False

    @classmethod
    def build_ivf(
        cls,
        dim: int,
        sample_ids: npt.NDArray[np.int64],
        sample: FloatArray,
        chunks: Chunks,
        total: int,
        progress: Progress | None = None,
    ) -> VectorIndex:
        """A trained, filled and calibrated IVF index. `sample` holds random live records: its
        first rows are calibration queries, held out (from training too) until calibrated, and
        searched exactly against every chunk in the same pass; the rest trains the lists."""
        take = min(ivf_sq8.CALIBRATION_QUERIES, len(sample) // 10)
        calibration = ivf_sq8.Calibration(sample[:take], sample_ids[:take])
        index = cls(dim, index=ivf_sq8.train(dim, sample[take:], total))
        held: list[tuple[npt.NDArray[np.int64], FloatArray]] = []
        done = 0
        for ids, vectors in chunks:
            out = np.isin(ids, calibration.ids) if take else np.zeros(len(ids), np.bool_)
            held.append((ids[out], vectors[out]))
            calibration.see(len(index.slot_ids), vectors[~out])
            index.add(ids[~out], vectors[~out])
            done += len(ids)
            if progress is not None:
                progress(done, total)
        if take:
            index.nprobe, index.recall = calibration.choose_nprobe(index.index)
        for ids, vectors in held:
            index.add(ids, vectors)
        index.trained_count = index.live_count
        return index

    def search(
        self,
        queries: FloatArray,
        k: int,
        allowed: npt.NDArray[np.int64] | None = None,
        excluded: Collection[int] = (),
        fetch: Fetch | None = None,
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Top-k (scores, record ids) per query among `allowed` ids (None: all) but `excluded`;
        id -1 pads rows with fewer than k hits. An IVF index needs `fetch` to re-score."""
        n = len(queries)
        if self.live_count == 0:
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        slots = self._without(self._candidate_slots(allowed), excluded)
        if self.kind == EXACT:
            return self._exact(queries, k, slots)
        if fetch is None:
            raise ValueError("an IVF index re-scores from full vectors: pass fetch")
        if slots is not None and len(slots) <= EXACT_BELOW:
            return _rescore_ids(queries, k, [self.slot_ids[slots]] * n, fetch)
        mask = None
        nprobe = self.nprobe
        if slots is not None or self.dead_count:
            mask = self.live if slots is None else _mask(len(self.live), slots)
            if slots is not None:  # a folder filter: probe more lists, fewer hits per list
                nprobe = int(nprobe * min(8.0, self.live_count / max(1, len(slots))))
        found = ivf_sq8.search(self.index, queries, ivf_sq8.candidates_for(k), nprobe, mask)
        ids = [self.slot_ids[row[row >= 0]] for row in found]
        return _rescore_ids(queries, k, ids, fetch)

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
        """A read-only (ntotal, dim) view of the exact index's own float32 storage."""
        faiss = _faiss()
        total = int(self.index.ntotal)
        if total == 0:
            return np.zeros((0, self.dim), np.float32)
        view: FloatArray = faiss.rev_swig_ptr(self.index.get_xb(), total * self.dim)
        return view.reshape(total, self.dim)

    def save(self, folder: Path, space: str) -> None:
        faiss = _faiss()
        token = secrets.token_hex(6)
        graph = folder / f"{space}.{token}.faiss"
        atomic_save(graph, lambda name: faiss.write_index(self.index, name))
        with atomic_writer(folder / f"{space}.{META}") as f:
            np.savez(
                f,
                generation=np.int64(self.generation),
                token=np.array(token),
                dim=np.int64(self.dim),
                slot_ids=self.slot_ids,
                live=self.live,
                nprobe=np.int64(self.nprobe),
                trained_count=np.int64(self.trained_count),
                recall=np.float64(self.recall),
                build_id=np.array(self.build_id),
                info=np.array(json.dumps(self.info())),
            )
        for old in [*folder.glob(f"{space}.*.faiss"), folder / f"{space}.hnsw.npz"]:
            if old != graph:
                old.unlink(missing_ok=True)

    @staticmethod
    def saved_stamp(folder: Path, space: str) -> tuple[int, int] | None:
        """(mtime_ns, size) of the saved index's metadata: changes whenever it is saved."""
        try:
            stat = (folder / f"{space}.{META}").stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    @staticmethod
    def saved_info(folder: Path, space: str) -> dict[str, object] | None:
        """`info()` of the saved index, read without loading it."""
        try:
            with np.load(folder / f"{space}.{META}") as meta:
                info: dict[str, object] = json.loads(str(meta["info"]))
                return info
        except (OSError, KeyError, ValueError):
            return None

    @staticmethod
    def load_generation(folder: Path, space: str) -> int | None:
        """The generation the saved index reflects (None: no readable saved index)."""
        saved = VectorIndex.saved_build(folder, space)
        return None if saved is None else saved[1]

    @staticmethod
    def saved_build(folder: Path, space: str) -> tuple[str, int] | None:
        """(build id, generation) of the saved index, read without loading it."""
        try:
            with np.load(folder / f"{space}.{META}") as meta:
                return str(meta["build_id"]), int(meta["generation"])
        except (OSError, KeyError, ValueError):
            return None

    @classmethod
    def load(cls, folder: Path, space: str, dim: int) -> VectorIndex | None:
        """The saved index, or None if there is none or it is unreadable."""
        meta_path = folder / f"{space}.{META}"
        try:
            with np.load(meta_path) as meta:
                token = str(meta["token"])
                generation = int(meta["generation"])
                saved_dim = int(meta["dim"])
                slot_ids = meta["slot_ids"].astype(np.int64)
                live = meta["live"].astype(np.bool_)
                nprobe = int(meta["nprobe"])
                trained_count = int(meta["trained_count"])
                recall = float(meta["recall"])
                build_id = str(meta["build_id"])
            index = _faiss().read_index(str(folder / f"{space}.{token}.faiss"))
        except (OSError, KeyError, ValueError, RuntimeError):
            return None
        if saved_dim != dim or index.ntotal != len(slot_ids) or hasattr(index, "hnsw"):
            return None
        return cls(
            dim=dim,
            generation=generation,
            index=index,
            slot_ids=slot_ids,
            live=live,
            nprobe=nprobe,
            trained_count=trained_count,
            recall=recall,
            build_id=build_id,
        )

    @staticmethod
    def remove_files(folder: Path, space: str) -> None:
        old = [folder / f"{space}.hnsw.npz", folder / f"{space}.{META}"]
        for path in [*folder.glob(f"{space}.*.faiss"), *old]:
            path.unlink(missing_ok=True)


def _rescore_ids(
    queries: FloatArray, k: int, candidates: list[npt.NDArray[np.int64]], fetch: Fetch
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Exact top-k of each query among its candidate record ids, vectors from `fetch`."""
    vectors = fetch(sorted({int(i) for ids in candidates for i in ids.tolist()}))
    scores = np.full((len(queries), k), -np.inf, np.float32)
    out = np.full((len(queries), k), -1, np.int64)
    for row, (query, ids) in enumerate(zip(queries, candidates, strict=True)):
        present = [int(i) for i in dict.fromkeys(ids.tolist()) if int(i) in vectors]
        if not present:
            continue
        sims = np.stack([vectors[i] for i in present]) @ query
        order = np.argsort(-sims, kind="stable")[:k]
        scores[row, : len(order)] = sims[order]
        out[row, : len(order)] = np.array(present, np.int64)[order]
    return scores, out


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
