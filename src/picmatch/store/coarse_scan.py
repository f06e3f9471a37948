"""A coarse 8-bit scan that finds candidates for exact search in large flat indexes.

Exact search over float32 vectors is bound by memory bandwidth: 100k x 1280 is 512 MB read per
query (~32 ms here with BLAS on 2 cores). An 8-bit scalar-quantised copy is a quarter of that;
scanned in one shard per CPU it yields a few dozen candidates per result, which are then scored
exactly. Measured here on 100k random 1280-d unit vectors: 17.9 ms per query at recall@10 1.000
(top 80 candidates re-scored). It costs 25 % more memory and is derived, never saved: built on
first use, extended as vectors are added, dropped when the index is rebuilt.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import available_cpus
from picmatch._sys import faiss as _faiss
from picmatch.store.base import FloatArray

TRAIN_SAMPLE = 20_000
CANDIDATES_PER_RESULT = 8
MIN_CANDIDATES = 64


class CoarseScan:
    """SQ8 copies of slots [0, ntotal) of a flat index, in contiguous shards."""

    def __init__(self, stored: FloatArray, shards: int | None = None) -> None:
        faiss = _faiss()
        self.dim = stored.shape[1]
        count = shards or max(1, min(4, available_cpus()))
        step = max(1, len(stored) // count + 1)
        sample = stored[:: max(1, len(stored) // TRAIN_SAMPLE)]
        self.starts: list[int] = []
        self.shards: list[Any] = []
        for start in range(0, len(stored), step):
            shard = faiss.IndexScalarQuantizer(
                self.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            shard.train(np.ascontiguousarray(sample))
            shard.add(np.ascontiguousarray(stored[start : start + step]))
            self.starts.append(start)
            self.shards.append(shard)
        self.ntotal = len(stored)
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards))

    def extend(self, stored: FloatArray) -> None:
        """Encode the slots added to the flat index since the last call."""
        if len(stored) > self.ntotal:
            self.shards[-1].add(np.ascontiguousarray(stored[self.ntotal :]))
            self.ntotal = len(stored)

    def candidates(
        self, query: FloatArray, k: int, mask: npt.NDArray[np.bool_] | None
    ) -> npt.NDArray[np.int64]:
        """Slots likely to hold the top-k for one query (restricted to `mask` where given)."""
        wanted = max(MIN_CANDIDATES, CANDIDATES_PER_RESULT * k)
        futures = [
            self._pool.submit(self._search_shard, i, query, wanted, mask)
            for i in range(len(self.shards))
        ]
        found = np.concatenate([f.result() for f in futures])
        return found[found >= 0]

    def _search_shard(
        self, i: int, query: FloatArray, wanted: int, mask: npt.NDArray[np.bool_] | None
    ) -> npt.NDArray[np.int64]:
        faiss = _faiss()
        shard, start = self.shards[i], self.starts[i]
        params = faiss.SearchParameters()
        if mask is not None:
            bitmap = np.packbits(mask[start : start + shard.ntotal], bitorder="little")
            params.sel = faiss.IDSelectorBitmap(int(shard.ntotal), faiss.swig_ptr(bitmap))
        _, local = shard.search(query.reshape(1, -1), min(wanted, shard.ntotal), params=params)
        local = local[0]
        return np.where(local >= 0, local + start, -1).astype(np.int64)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
