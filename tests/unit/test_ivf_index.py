"""The IVF-SQ8 kind of the derived index, on small vectors with the traits of real embeddings:
non-negative, power-normalised, anisotropic, loosely clustered (not isotropic noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from picmatch.store import ivf_sq8
from picmatch.store.vector_index import EXACT, IVF, VectorIndex

DIM = 64


def reallike(n: int, seed: int = 0, dim: int = DIM) -> npt.NDArray[np.float32]:
    """Clipped, square-rooted Gaussian mixture with a decaying spectrum, L2-normalised."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / (1.0 + np.arange(dim)) ** 0.7
    centres = rng.gamma(0.6, 1.0, size=(40, dim)) * spectrum
    base = np.random.default_rng(99).gamma(0.6, 1.0, size=dim) * spectrum  # shared mean
    x = base + centres[rng.integers(0, 40, n)] + rng.normal(size=(n, dim)) * spectrum
    x = np.sqrt(np.maximum(x, 0))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def chunks(ids: npt.NDArray[np.int64], vectors: np.ndarray, size: int = 1000):  # type: ignore[no-untyped-def]
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vectors[start : start + size]


def fetcher(ids: npt.NDArray[np.int64], vectors: np.ndarray):  # type: ignore[no-untyped-def]
    row = {int(i): r for r, i in enumerate(ids.tolist())}
    return lambda wanted: {i: vectors[row[i]] for i in wanted if i in row}


def build(n: int, seed: int = 0) -> tuple[VectorIndex, npt.NDArray[np.int64], np.ndarray]:
    vectors = reallike(n + 200, seed)[200:]  # the first 200 are held-out queries
    ids = np.arange(n, dtype=np.int64) * 3 + 5
    wanted = min(n, ivf_sq8.lists_for(n) * ivf_sq8.TRAIN_PER_LIST + ivf_sq8.CALIBRATION_QUERIES)
    rows = np.random.default_rng(1).choice(n, wanted, replace=False)
    index = VectorIndex.build_ivf(DIM, ids[rows], vectors[rows], chunks(ids, vectors), n)
    index.flat_max = 1000  # this small an index would otherwise want to be exact
    return index, ids, vectors


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def test_calibrated_recall_holds_for_held_out_queries() -> None:
    index, ids, vectors = build(20_000)
    assert index.kind == IVF and index.trained_count == 20_000
    assert ivf_sq8.lists(index.index).nlist == ivf_sq8.lists_for(20_000)
    assert 1 <= index.nprobe < ivf_sq8.lists(index.index).nlist  # calibrated, not a full scan
    assert index.recall >= ivf_sq8.TARGET_RECALL
    queries = reallike(20_200)[:200]  # same distribution, never indexed
    _, found = index.search(queries, 10, fetch=fetcher(ids, vectors))
    truth = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    assert recall(found, truth) >= 0.95
    scores, _ = index.search(queries[:5], 10, fetch=fetcher(ids, vectors))
    exact = np.sort(queries[:5] @ vectors.T, axis=1)[:, ::-1][:, :10]
    assert np.allclose(scores[:, 0], exact[:, 0], atol=1e-5)  # re-scored exactly


def test_new_vectors_are_searchable_at_once_without_retraining() -> None:
    index, ids, vectors = build(8000)
    lists = index.index
    extra = reallike(300, seed=3)  # from other clusters
    extra_ids = np.arange(300, dtype=np.int64) + 10**9
    index.add(extra_ids, extra)
    assert index.index is lists and index.trained_count == 8000 and not index.needs_rebuild()
    every_id = np.concatenate([ids, extra_ids])
    fetch = fetcher(every_id, np.vstack([vectors, extra]))
    _, found = index.search(extra[:50], 1, fetch=fetch)
    assert (found[:, 0] == extra_ids[:50]).all()

    index.remove(extra_ids[:10])  # deleted: never returned again
    _, found = index.search(extra[:10], 5, fetch=fetch)
    assert not set(found.ravel().tolist()) & set(extra_ids[:10].tolist())
    _, found = index.search(extra[10:20], 3, excluded=set(extra_ids[10:20].tolist()), fetch=fetch)
    assert not set(found.ravel().tolist()) & set(extra_ids[10:20].tolist())


def test_filtered_search_on_ivf_stays_inside_the_filter() -> None:
    index, ids, vectors = build(8000)
    fetch = fetcher(ids, vectors)
    small = ids[ids % 7 == 0][:500]  # few enough to score exactly
    _, found = index.search(vectors[:4], 5, small, fetch=fetch)
    sims = vectors[:4] @ vectors[(small - 5) // 3].T
    assert (found == small[np.argsort(-sims, axis=1)[:, :5]]).all()
    large = ids[ids % 2 == 1]  # a large filter goes through the lists with a bitmap
    _, found = index.search(vectors[:20], 5, large, fetch=fetch)
    assert set(found.ravel().tolist()) <= set(large.tolist())


def test_rebuild_policy_follows_the_size() -> None:
    index, ids, vectors = build(4000)
    assert not index.needs_rebuild()
    more = reallike(4100, seed=5)
    index.add(np.arange(4100, dtype=np.int64) + 10**9, more)
    assert index.needs_rebuild()  # grew more than RETRAIN_GROWTH-fold since training
    small = VectorIndex(DIM, flat_max=1000)
    small.add(ids[:1000], vectors[:1000])
    assert small.kind == EXACT and not small.needs_rebuild()
    small.add(ids[1000:1001], vectors[1000:1001])
    assert small.kind == EXACT and small.needs_rebuild()  # becomes IVF at the next flush


def test_saved_ivf_index_loads_with_its_calibration(tmp_path: Path) -> None:
    index, ids, vectors = build(6000)
    index.remove(ids[:3])
    index.generation = 17
    index.save(tmp_path, "s")
    loaded = VectorIndex.load(tmp_path, "s", DIM)
    assert loaded is not None and loaded.kind == IVF and loaded.generation == 17
    assert (loaded.nprobe, loaded.recall, loaded.trained_count) == (
        index.nprobe,
        index.recall,
        index.trained_count,
    )
    assert loaded.live_count == 5997 and loaded.info()["recall_at_10"] == round(index.recall, 3)
    _, found = loaded.search(vectors[10:20], 1, fetch=fetcher(ids, vectors))
    assert (found[:, 0] == ids[10:20]).all()
    assert VectorIndex.load_generation(tmp_path, "s") == 17
