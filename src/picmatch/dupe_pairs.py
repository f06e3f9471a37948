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
_BLOCK_FLOATS = 50_000_000  # one block of scores: 200 MB


def knn_pairs(
    vectors: FloatArray, k: int, min_score: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Pairs (i, j) where j is among the `k` nearest of i with score >= `min_score` (exact),
    and each item's background: its score with its `BACKGROUND_RANK`th nearest neighbour
    (2.0, so no margin counts, where the set has too few images to tell)."""
    n = len(vectors)
    background = np.full(n, 2.0, dtype=np.float32)
    k = min(max(k, BACKGROUND_RANK), n - 1)
    if k < 1:
        empty = np.zeros(0, np.int64)
        return empty, empty, background
    block = max(1, min(4096, _BLOCK_FLOATS // max(n, 1)))
    found_i: list[IntArray] = []
    found_j: list[IntArray] = []
    for start in range(0, n, block):
        scores = vectors[start : start + block] @ vectors.T
        rows = np.arange(scores.shape[0])
        scores[rows, rows + start] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        picked = scores[rows[:, None], top]
        if k >= BACKGROUND_RANK:
            ranked = -np.partition(-picked, BACKGROUND_RANK - 1, axis=1)
            background[start : start + len(rows)] = ranked[:, BACKGROUND_RANK - 1]
        a, b = np.nonzero(picked >= min_score)
        found_i.append((a + start).astype(np.int64))
        found_j.append(top[a, b].astype(np.int64))
    return np.concatenate(found_i), np.concatenate(found_j), background


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
    digests: Sequence[str],
    background: FloatArray,
) -> Pairs:
    score = np.einsum("nd,nd->n", vectors[i], vectors[j]).astype(np.float32)
    distance = pair_distance(hashes, mirrors, i, j)
    distance = np.where(known[i] & known[j], distance, UNKNOWN_DISTANCE).astype(np.int64)
    digest = np.asarray(digests, dtype=object)
    same = (digest[i] == digest[j]) & (digest[i] != "") if len(i) else np.zeros(0, bool)
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
    knn_i, knn_j, background = knn_pairs(vectors, k, min_score)
    sources = [(knn_i, knn_j), same_bytes_pairs(digests)]
    if max_distance >= 0 and known.any():
        where = np.flatnonzero(known)
        a, b = close_pairs(hashes[where], mirrors[where], max_distance)
        sources.append((where[a], where[b]))
    parts = [
        score_pairs(i, j, vectors, hashes, mirrors, known, digests, background) for i, j in sources
    ]
    return merge_pairs(parts)
