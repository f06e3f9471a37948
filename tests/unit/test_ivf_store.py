"""The SQLite store past its exact range: the index changes kind only in `flush()` (the end of
an index run), a new process loads the saved index, and new vectors are searchable at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from picmatch.store import sqlite as sqlite_module
from picmatch.store import vector_index
from picmatch.store.base import Metric, Payload, Record, SpaceInfo
from picmatch.store.sqlite import SqliteStore
from tests.unit.test_ivf_index import reallike

DIM = 64
SPACE = SpaceInfo("s", DIM, Metric.COSINE, "test-model")


def records(vectors: np.ndarray, start: int = 0) -> list[Record]:
    return [
        Record(start + i, v, Payload(f"/p/{start + i}.jpg", f"h{start + i}", 1, 1, 4, 3))
        for i, v in enumerate(vectors)
    ]


def no_build(*args: object, **kwargs: object) -> None:
    raise AssertionError("a search must not build the index")


@pytest.fixture(autouse=True)
def small_exact_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_index, "FLAT_MAX", 2000)


def test_the_kind_changes_at_flush_and_a_new_process_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = reallike(6200)
    queries, vectors = vectors[:200], vectors[200:]
    store = SqliteStore(tmp_path)
    store.ensure_space(SPACE)
    store.upsert(SPACE.name, records(vectors[:1500]))
    assert store.search(SPACE.name, vectors[:1], 1)[0][0].id == 0
    store.upsert(SPACE.name, records(vectors[1500:], start=1500))  # past the exact range
    monkeypatch.setattr(sqlite_module, "build_index", no_build)
    assert store.search(SPACE.name, vectors[5000:5001], 1)[0][0].id == 5000
    assert store.index_info(SPACE.name)["kind"] == "exact"  # still exact until the flush
    monkeypatch.undo()
    monkeypatch.setattr(vector_index, "FLAT_MAX", 2000)

    seen: list[tuple[int, int]] = []
    store.flush(lambda done, total: seen.append((done, total)))
    info = store.index_info(SPACE.name)
    assert info["kind"] == "ivf-sq8" and info["vectors"] == 6000
    assert float(str(info["recall_at_10"])) >= 0.95 and seen[-1] == (6000, 6000)

    monkeypatch.setattr(sqlite_module, "build_index", no_build)
    reader = SqliteStore(tmp_path)  # another process: loads the saved index, builds nothing
    assert reader.index_info(SPACE.name)["kind"] == "ivf-sq8"  # from the saved metadata
    hits = reader.search(SPACE.name, queries, 10)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    got = [{h.id for h in row} for row in hits]
    assert np.mean([len(g & set(t.tolist())) / 10 for g, t in zip(got, truth, strict=True)]) >= 0.95
    assert [h.score for h in hits[0]] == pytest.approx(
        np.sort(queries[0] @ vectors.T)[::-1][:10].tolist(), abs=1e-5
    )

    extra = reallike(300, seed=11)
    store.upsert(SPACE.name, records(extra, start=10_000))  # the writer, an index run
    store.delete(SPACE.name, [0, 1])
    store.flush()  # caught up and saved, not rebuilt: the reader catches up, no reload
    monkeypatch.setattr(vector_index.VectorIndex, "load", no_build)
    hits = reader.search(SPACE.name, np.vstack([extra[:20], vectors[:2]]), 1)
    assert [row[0].id for row in hits[:20]] == list(range(10_000, 10_020))
    assert {row[0].id for row in hits[20:]}.isdisjoint({0, 1})
    assert reader.index_info(SPACE.name)["kind"] == "ivf-sq8"  # added, not rebuilt
    store.close()
    reader.close()


def test_an_exact_process_picks_up_the_ivf_index_another_one_saved(tmp_path: Path) -> None:
    vectors = reallike(5000, seed=2)
    writer, reader = SqliteStore(tmp_path), SqliteStore(tmp_path)
    writer.ensure_space(SPACE)
    writer.upsert(SPACE.name, records(vectors[:1000]))
    reader.search(SPACE.name, vectors[:1], 1)  # the reader now holds an exact index
    writer.upsert(SPACE.name, records(vectors[1000:], start=1000))
    writer.flush()
    assert reader.search(SPACE.name, vectors[4000:4001], 1)[0][0].id == 4000
    assert reader.index_info(SPACE.name)["kind"] == "ivf-sq8"
    writer.close()
    reader.close()


def test_a_lost_index_file_is_rebuilt(tmp_path: Path) -> None:
    vectors = reallike(4000, seed=3)
    store = SqliteStore(tmp_path)
    store.ensure_space(SPACE)
    store.upsert(SPACE.name, records(vectors))
    store.flush()
    store.close()
    for path in tmp_path.glob("s.*.faiss"):
        path.unlink()
    reopened = SqliteStore(tmp_path)
    assert reopened.search(SPACE.name, vectors[7:8], 1)[0][0].id == 7
    assert reopened.index_info(SPACE.name)["kind"] == "ivf-sq8"
    reopened.close()
