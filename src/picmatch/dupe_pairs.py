"""Candidate pairs for duplicate finding, from three sources, each pair scored by both evidences.

1. Embedding neighbours: each image's `k` nearest by cosine (exact, blocked matrix products).
2. Hash neighbours: every pair within a Hamming distance (blocked brute force over uint64).
3. Same bytes: every pair of images that share a content hash.

Then every candidate gets its embedding score (a dot product) and its hash distance, so the
decision in `duplicates.accepted` sees both, whichever source found the pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from picmatch.duplicates import BACKGROUND_RANK, FloatArray, IntArray, Pairs, merge_pairs
from picmatch.images.phash import HashArray, close_pairs, pair_distance

UNKNOWN_DISTANCE = 64
EXACT_LIMIT = 200_000  # up to here neighbours are exact; past it, an IVF index finds them
_BLOCK_FLOATS = 50_000_000  # one block of scores: 200 MB


def knn_pairs(
    vectors: FloatArray, k: int, min_score: float
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Pairs (i, j, score) where j is among the `k` nearest of i with score >= `min_score`, and each
    item's background: its score with its `BACKGROUND_RANK`th nearest neighbour (2.0, so no
    margin counts, where the set has too few images to tell).

    Past `REDUCE_FROM` images the neighbours are looked up in a 256-d PCA projection (5x less
    arithmetic), a few more than asked, and then ranked by their exact scores; past
    `EXACT_LIMIT`, the lookup uses an IVF index instead of a full scan. `vectors` may be
    float16 (half the memory; scores are computed in float32)."""
    n = len(vectors)
    background = np.full(n, 2.0, dtype=np.float32)
    k = min(max(k, BACKGROUND_RANK), n - 1)
    if k < 1:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32), background
    reduce = n > REDUCE_FROM and vectors.shape[1] > REDUCED_DIM
    space = _pca(vectors, REDUCED_DIM) if reduce else vectors
    wanted = min(n - 1, k + 8) if reduce else k
    ids = _top_ivf(space, wanted) if n > EXACT_LIMIT else _top_exact(space, wanted)
    scores = _exact_scores(vectors, ids)
    order = np.argsort(-scores, axis=1)[:, :k]
    ids = np.take_along_axis(ids, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    if k >= BACKGROUND_RANK:
        background = np.where(
            np.isfinite(scores[:, BACKGROUND_RANK - 1]), scores[:, BACKGROUND_RANK - 1], 2.0
        ).astype(np.float32)
    a, b = np.nonzero(scores >= min_score)
    return a.astype(np.int64), ids[a, b].astype(np.int64), scores[a, b], background


REDUCE_FROM = 4096
REDUCED_DIM = 256


def _pca(vectors: FloatArray, dim: int) -> FloatArray:
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), REDUCE_FROM, replace=False))
    sample = vectors[rows].astype(np.float32)
    mean = sample.mean(axis=0)
    centred = sample - mean
    top = _top_subspace(centred.T @ centred, dim)
    out = np.empty((len(vectors), dim), dtype=np.float32)
    for start in range(0, len(vectors), 65_536):
        block = vectors[start : start + 65_536].astype(np.float32)
        out[start : start + 65_536] = (block - mean) @ top
    return out


def _top_subspace(covariance: FloatArray, dim: int) -> FloatArray:
    """An orthonormal basis close to the top-`dim` eigenvectors' span, by subspace iteration
    (a full eigendecomposition of 1280 x 1280 took 11 s on a busy 2-core machine)."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((covariance.shape[0], dim)).astype(np.float32)
    for _ in range(4):
        basis = _orthonormal(covariance @ basis)
    return basis


def _orthonormal(columns: FloatArray) -> FloatArray:
    """Gram-Schmidt, twice, in plain matrix-vector products (LAPACK's QR crawled on a loaded
    machine: 2.6 s for 1280 x 256)."""
    out = np.ascontiguousarray(columns.T.astype(np.float32))  # rows are the vectors
    for _ in range(2):
        for c in range(len(out)):
            if c:
                out[c] -= (out[:c] @ out[c]) @ out[:c]
            out[c] /= max(float(np.linalg.norm(out[c])), 1e-12)
    result: FloatArray = np.ascontiguousarray(out.T)
    return result


def _top_exact(space: FloatArray, k: int) -> IntArray:
    """The `k` nearest of each row by inner product (itself left out), by blocked scans."""
    n = len(space)
    block = max(1, min(4096, _BLOCK_FLOATS // max(n, 1)))
    ids = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        scores = space[start : start + block] @ space.T
        rows = np.arange(scores.shape[0])
        scores[rows, rows + start] = -np.inf
        ids[start : start + len(rows)] = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return ids


def _top_ivf(space: FloatArray, k: int) -> IntArray:
    """`_top_exact` past `EXACT_LIMIT`: an IVF index probing 16 of 2 sqrt(n) lists
    (approximate: a neighbour it misses is not paired). -1 where fewer were found."""
    from picmatch._sys import faiss

    fx = faiss()
    n, dim = space.shape
    lists = int(2 * np.sqrt(n))
    index = fx.IndexIVFFlat(fx.IndexFlatIP(dim), dim, lists, fx.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(n, min(n, 40 * lists), replace=False)
    index.train(np.ascontiguousarray(space[np.sort(sample)]))
    for start in range(0, n, 65_536):
        index.add(np.ascontiguousarray(space[start : start + 65_536]))
    index.nprobe = 16
    ids = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, 65_536):
        _, found = index.search(np.ascontiguousarray(space[start : start + 65_536]), k + 1)
        rows = np.arange(len(found))[:, None] + start
        found = np.where(found == rows, -1, found)  # itself
        found = -np.sort(-found, axis=1)  # push -1 (itself, or nothing found) to the end
        ids[start : start + len(found)] = found[:, :k]
    return ids


def _exact_scores(vectors: FloatArray, ids: IntArray) -> FloatArray:
    """Cosine score of each row with each of its candidate ids; -inf where the id is -1."""
    n, k = ids.shape
    out = np.full((n, k), -np.inf, dtype=np.float32)
    step = max(1, 8_000_000 // (max(k, 1) * vectors.shape[1]))  # 32 MB of gathered vectors
    for start in range(0, n, step):
        chunk = ids[start : start + step]
        safe = np.maximum(chunk, 0)
        mine = vectors[start : start + step].astype(np.float32)
        got = np.einsum("nd,nkd->nk", mine, vectors[safe].astype(np.float32))
        out[start : start + step] = np.where(chunk >= 0, got, -np.inf)
    return out


def same_bytes_pairs(digests: Sequence[str]) -> tuple[IntArray, IntArray]:
    by_digest: dict[str, list[int]] = {}
    for index, digest in enumerate(digests):
        if digest:
            by_digest.setdefault(digest, []).append(index)
    i: list[int] = []
    j: list[int] = []
    for members in by_digest.values():
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                i.append(a)
                j.append(b)
    return np.asarray(i, np.int64), np.asarray(j, np.int64)


def score_pairs(
    i: IntArray,
    j: IntArray,
    vectors: FloatArray,
    hashes: HashArray,
    mirrors: HashArray,
    known: npt.NDArray[np.bool_],
    codes: IntArray,
    background: FloatArray,
    score: FloatArray | None = None,
) -> Pairs:
    """Both evidences for the pairs (i, j); `codes` number the content hashes (-1: none)."""
    if score is None:
        score = np.zeros(len(i), dtype=np.float32)
        step = max(1, 8_000_000 // vectors.shape[1])
        for start in range(0, len(i), step):
            a, b = i[start : start + step], j[start : start + step]
            va, vb = vectors[a].astype(np.float32), vectors[b].astype(np.float32)
            score[start : start + step] = np.einsum("nd,nd->n", va, vb)
    distance = pair_distance(hashes, mirrors, i, j)
    distance = np.where(known[i] & known[j], distance, UNKNOWN_DISTANCE).astype(np.int64)
    same = (codes[i] == codes[j]) & (codes[i] >= 0)
    margin = (score - np.maximum(background[i], background[j])).astype(np.float32)
    return Pairs(i, j, score, distance, np.asarray(same, dtype=bool), margin)


def candidate_pairs(
    vectors: FloatArray,
    hashes: HashArray,
    mirrors: HashArray,
    known: npt.NDArray[np.bool_],
    digests: Sequence[str],
    *,
    k: int,
    min_score: float,
    max_distance: int,
) -> Pairs:
    """All candidates from the three sources, each pair once, with both evidences."""
    knn_i, knn_j, knn_score, background = knn_pairs(vectors, k, min_score)
    sources = [same_bytes_pairs(digests)]
    if max_distance >= 0 and known.any():
        where = np.flatnonzero(known)
        a, b = close_pairs(hashes[where], mirrors[where], max_distance)
        sources.append((where[a], where[b]))
    _, codes = np.unique(np.asarray(digests, dtype=object), return_inverse=True)
    codes = np.where(np.asarray([not d for d in digests]), -1, codes).astype(np.int64)
    evidence = (vectors, hashes, mirrors, known, codes, background)
    parts = [score_pairs(knn_i, knn_j, *evidence, knn_score)]
    parts += [score_pairs(i, j, *evidence) for i, j in sources]
    return merge_pairs(parts)
