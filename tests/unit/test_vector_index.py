"""The derived FAISS index while it is exact (IVF-SQ8 above `flat_max`: test_ivf_index.py)."""

from __future__ import annotations

import numpy as np

from picmatch.store.vector_index import VectorIndex


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_filtered_search_is_exact_on_small_subsets() -> None:
    vectors = clustered(500, seed=1)
    index = VectorIndex(32)
    ids = np.arange(500, dtype=np.int64)
    index.add(ids, vectors)
    allowed = ids[ids % 5 == 0]
    _, found = index.search(vectors[:3], 4, allowed)
    brute = vectors[:3] @ vectors[allowed].T
    expected = allowed[np.argsort(-brute, axis=1)[:, :4]]
    assert (found == expected).all()


def test_coarse_scan_gives_the_exact_answers() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((6000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(6000, dtype=np.int64) + 10
    index = VectorIndex(64, coarse_above=1000)
    index.add(ids[:4000], vectors[:4000])
    queries = vectors[[5, 500, 3999]] + 0.05 * rng.standard_normal((3, 64)).astype(np.float32)
    first = index.search(queries, 10)
    assert index.coarse is not None
    index.add(ids[4000:], vectors[4000:])  # the coarse copy is extended, not rebuilt
    index.remove(ids[:2])
    scores, found = index.search(queries, 10)
    sims = queries @ vectors[2:].T
    expected = np.argsort(-sims, axis=1)[:, :10] + 12
    assert (found == expected).all()
    assert np.allclose(scores, np.take_along_axis(sims, expected - 12, axis=1), atol=1e-5)
    assert first[1][0, 0] == 15 and index.coarse.ntotal == 6000

    allowed = ids[(ids % 5 != 0) & (ids >= 12)]  # more than EXACT_BELOW: masked coarse scan
    _, found = index.search(queries, 5, allowed)
    sims = queries @ vectors[allowed - 10].T
    assert (found == allowed[np.argsort(-sims, axis=1)[:, :5]]).all()


def test_excluded_ids_never_come_back() -> None:
    vectors = clustered(6000, seed=4)
    ids = np.arange(6000, dtype=np.int64)
    index = VectorIndex(32, coarse_above=1000)
    index.add(ids, vectors)
    excluded = set(range(0, 6000, 3))
    _, found = index.search(vectors[:6], 10, excluded=excluded)
    sims = vectors[:6] @ vectors.T
    sims[:, sorted(excluded)] = -np.inf
    assert (found == np.argsort(-sims, axis=1, kind="stable")[:, :10]).all()
    _, found = index.search(vectors[:6], 3, ids[:100], excluded)  # with a folder-like filter
    assert set(found.ravel().tolist()) <= set(range(100)) - excluded
