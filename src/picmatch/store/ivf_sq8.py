"""The approximate index for large spaces: IVF over 8-bit PCA codes, 8-bit re-ranking, and a
number of probed lists calibrated on the library's own vectors.

Past `vector_index.FLAT_MAX` vectors a query goes through three steps:
1. an inverted file over the vectors' first `PCA_DIM` principal components, 8-bit coded
   (`IndexPreTransform(PCAMatrix, IndexIVFScalarQuantizer)`): `nprobe` lists give
   `coarse_for(k)` candidates. Both steps rank by L2, which for unit vectors ranks as cosine
   does and, unlike the inner product, ignores the PCA's centring;
2. those are re-ranked with 8-bit codes of the whole vectors (`IndexRefine` over an
   `IndexScalarQuantizer`), keeping `candidates_for(k)`;
3. the caller re-scores these exactly from the full-precision vectors, which stay on disk.
Memory: PCA_DIM + dim bytes a vector (1.5 KB at dim 1280: 1.5 GB at 1M, against 5.1 GB of
float32). Measured at 300k real-like vectors (benchmarks/search_latency.py), scanning
256-byte PCA codes is ~3x faster than scanning full 8-bit codes at the same recall, and it
trains and fills ~5x faster.

`nprobe` is not a guess: at build time `Calibration` holds a few library vectors out of the
index (and of training), finds their exact top-k in the same pass that adds every other vector,
and picks the smallest nprobe whose recall@10 reaches `TARGET_RECALL`; then they are added.
(Self-queries, vectors searched while in the index, overstate recall badly: 0.97 where
held-out queries got 0.83, at 300k real-like vectors.) The recall it measured is saved with
the index and shown by `picmatch info`. The store retrains (and recalibrates) at the end of an
index run once the space has grown `vector_index.RETRAIN_GROWTH`-fold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import faiss as _faiss
from picmatch.store.base import FloatArray

PCA_DIM = 256
TARGET_RECALL = 0.965  # on held-out library vectors (200: +-0.01); the goal is >= 0.95
CALIBRATION_QUERIES = 200
TRAIN_PER_LIST = 30
KMEANS_ITERATIONS = 10
NPROBE_STEPS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 448, 512, 640, 768)
MIN_COARSE, COARSE_PER_RESULT = 1000, 100
MIN_CANDIDATES, CANDIDATES_PER_RESULT = 40, 4


def lists_for(count: int) -> int:
    """Inverted lists for a space of `count` vectors."""
    return int(min(8192, max(16, round(4 * math.sqrt(count)))))


def candidates_for(k: int) -> int:
    """Candidates kept after the 8-bit re-ranking, for exact re-scoring."""
    return max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * k)


def coarse_for(k: int) -> int:
    """Candidates taken from the inverted lists, for the 8-bit re-ranking."""
    return max(MIN_COARSE, COARSE_PER_RESULT * k)


def train(dim: int, sample: FloatArray, count: int) -> Any:
    """An empty index whose PCA, lists and quantisers are fitted to `sample`."""
    faiss = _faiss()
    reduced = min(PCA_DIM, max(1, dim // 2), len(sample))  # PCA rank <= samples
    lists = min(lists_for(count), max(1, len(sample) // 8))
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatL2(reduced), reduced, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2
    )
    ivf.cp.niter = KMEANS_ITERATIONS
    ivf.cp.max_points_per_centroid = TRAIN_PER_LIST
    ivf.cp.min_points_per_centroid = 8
    coarse = faiss.IndexPreTransform(faiss.PCAMatrix(dim, reduced), ivf)
    fine = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
    index = faiss.IndexRefine(coarse, fine)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index  # its Python wrapper references the parts (read_index: the index owns them)


def lists(index: Any) -> Any:
    """The inverted file inside the index."""
    faiss = _faiss()
    return faiss.downcast_index(faiss.downcast_index(index.base_index).index)


def memory_bytes(index: Any) -> int:
    ivf = lists(index)
    per_vector = int(ivf.code_size) + 8 + int(index.refine_index.sa_code_size())
    return per_vector * int(index.ntotal) + int(ivf.nlist) * int(ivf.d) * 4


def search(
    index: Any,
    queries: FloatArray,
    count: int,
    nprobe: int,
    mask: npt.NDArray[np.bool_] | None,
    coarse: int | None = None,
) -> npt.NDArray[np.int64]:
    """(queries, count) candidate slots, -1 padded; only slots set in `mask` (None: all)."""
    faiss = _faiss()
    ivf_params = faiss.SearchParametersIVF()
    ivf_params.nprobe = int(min(nprobe, lists(index).nlist))
    keep: list[Any] = []
    if mask is not None:
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        ivf_params.sel = selector
        keep += [bitmap, selector]
    pre_params = faiss.SearchParametersPreTransform()
    pre_params.index_params = ivf_params
    params = faiss.IndexRefineSearchParameters()
    params.base_index_params = pre_params
    params.k_factor = max(1.0, (coarse or coarse_for(count)) / count)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # this thread only; one query on 2 busy cores: ~2x faster
    try:
        _, slots = index.search(queries, count, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
    del keep
    return np.asarray(slots, dtype=np.int64)


class Calibration:
    """Held-out library vectors as queries: their exact top-k among every vector added while
    they are held out, accumulated chunk by chunk in the pass that fills the index."""

    def __init__(self, queries: FloatArray, ids: npt.NDArray[np.int64], k: int = 10) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.ids = ids
        self.k = k
        self.scores = np.full((len(queries), k), -np.inf, np.float32)
        self.slots = np.full((len(queries), k), -1, np.int64)

    def see(self, first_slot: int, vectors: FloatArray) -> None:
        """Account for vectors added at slots first_slot, first_slot + 1, ..."""
        if len(vectors) == 0:
            return
        sims = self.queries @ np.asarray(vectors, dtype=np.float32).T
        slots = np.arange(first_slot, first_slot + len(vectors), dtype=np.int64)
        scores = np.concatenate([self.scores, sims], axis=1)
        found = np.concatenate([self.slots, np.broadcast_to(slots, sims.shape)], axis=1)
        top = np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(scores, top, axis=1)
        self.slots = np.take_along_axis(found, top, axis=1)

    def recall(self, index: Any, nprobe: int) -> float:
        """Recall@k after exact re-scoring of `candidates_for(k)` candidates."""
        found = search(index, self.queries, candidates_for(self.k), nprobe, None)
        hits = sum(
            len(set(got.tolist()) & set(truth.tolist()))
            for got, truth in zip(found, self.slots, strict=True)
        )
        return hits / self.slots.size

    def choose_nprobe(self, index: Any) -> tuple[int, float]:
        """The smallest nprobe reaching TARGET_RECALL (else the largest tried), and its recall."""
        nlist = int(lists(index).nlist)
        nprobe, recall = 1, 0.0
        for nprobe in [n for n in NPROBE_STEPS if n < nlist] + [nlist]:
            recall = self.recall(index, nprobe)
            if recall >= TARGET_RECALL:
                break
        return nprobe, recall
