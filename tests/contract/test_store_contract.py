"""One contract suite for every `VectorStore` backend, run against the real backends: SQLite in a
temp folder and a real Milvus server (tests/milvus_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from picmatch.errors import ConfigError, SpaceMismatchError, StoreError
from picmatch.store.base import Metric, Payload, Record, SearchFilter, SpaceInfo, VectorStore
from picmatch.store.registry import open_store
from tests.milvus_server import TOKEN

DIM = 16
SPACE = SpaceInfo("test_space", DIM, Metric.COSINE, "test-model", {"resize": "squash"})


BACKENDS = ["sqlite", pytest.param("milvus", marks=pytest.mark.milvus)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "milvus":
        url: str = request.getfixturevalue("milvus_url")
        return url
    return f"sqlite://{tmp_path / 'store'}"


def connect(url: str) -> VectorStore:
    return open_store(url, token=TOKEN if url.startswith("milvus") else None)


@pytest.fixture
def store(store_url: str) -> Iterator[VectorStore]:
    s = connect(store_url)
    s.ensure_space(SPACE)
    yield s
    s.close()


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(vectors: np.ndarray, folder: str = "/photos", start: int = 0) -> list[Record]:
    return [
        Record(start + i, v, Payload(f"{folder}/{start + i}.jpg", f"h{start + i}", 100, 1, 4, 3))
        for i, v in enumerate(vectors)
    ]


def test_search_finds_each_vector_first_with_exact_cosine(store: VectorStore) -> None:
    vectors = unit_vectors(300)
    store.upsert(SPACE.name, records(vectors))
    hits = store.search(SPACE.name, vectors[:20], k=5)
    assert [row[0].id for row in hits] == list(range(20))
    brute = vectors[:20] @ vectors.T
    for q, row in enumerate(hits):
        expected = np.argsort(-brute[q])[:5]
        assert [h.id for h in row] == expected.tolist()
        assert [h.score for h in row] == pytest.approx(brute[q][expected].tolist(), abs=1e-5)
        assert row[0].payload.path == f"/photos/{q}.jpg"


def test_upsert_replaces_and_delete_removes(store: VectorStore) -> None:
    vectors = unit_vectors(50)
    store.upsert(SPACE.name, records(vectors))
    assert store.count(SPACE.name) == 50
    store.upsert(SPACE.name, records(vectors[1:2], start=0))  # id 0 now holds vector 1
    hits = store.search(SPACE.name, vectors[:1], k=50)[0]
    assert hits[0].id != 0
    store.delete(SPACE.name, [1, 2, 999])
    assert store.count(SPACE.name) == 48
    ids = {h.id for h in store.search(SPACE.name, vectors[1:3], k=50)[0]}
    assert not ids & {1, 2}
    assert [r.id for r in store.get(SPACE.name, [3, 1, 0])] == [3, 0]
    np.testing.assert_allclose(store.get(SPACE.name, [0])[0].vector, vectors[1])


def test_payloads_round_trip(store: VectorStore) -> None:
    p = Payload("/a/é ü.jpg", "abc", 12, 1_700_000_000_123_456_789, 4000, 3000, 1.5e9)
    store.upsert(SPACE.name, [Record(2**62 + 5, unit_vectors(1)[0], p)])
    assert list(store.iter_payloads(SPACE.name)) == [(2**62 + 5, p)]


def test_filter_by_folder_and_excluded_ids(store: VectorStore) -> None:
    vectors = unit_vectors(100)
    store.upsert(SPACE.name, records(vectors[:50], "/a"))
    store.upsert(SPACE.name, records(vectors[50:], "/a2", start=50))
    hits = store.search(SPACE.name, vectors[60:61], k=10, flt=SearchFilter(path_prefixes=("/a",)))
    assert hits[0] and all(h.payload.path.startswith("/a/") for h in hits[0])
    hits = store.search(SPACE.name, vectors[:1], k=3, flt=SearchFilter(exclude_ids=frozenset({0})))
    assert 0 not in [h.id for h in hits[0]]


def test_fewer_records_than_k_and_empty_space(store: VectorStore) -> None:
    assert store.search(SPACE.name, unit_vectors(1), k=5) == [[]]
    store.upsert(SPACE.name, records(unit_vectors(3)))
    assert len(store.search(SPACE.name, unit_vectors(1, seed=9), k=10)[0]) == 3


def test_space_identity_is_enforced(store: VectorStore) -> None:
    with pytest.raises(SpaceMismatchError):
        store.ensure_space(SpaceInfo(SPACE.name, DIM, Metric.COSINE, "other-model"))
    with pytest.raises(SpaceMismatchError):
        store.ensure_space(SpaceInfo(SPACE.name, 8, Metric.COSINE, "test-model"))
    with pytest.raises(SpaceMismatchError):
        store.upsert(SPACE.name, records(np.ones((1, 8), np.float32)))
    assert store.ensure_space(SPACE) == store.get_space(SPACE.name)


def test_drop_space(store: VectorStore) -> None:
    store.upsert(SPACE.name, records(unit_vectors(5)))
    store.drop_space(SPACE.name)
    assert store.get_space(SPACE.name) is None
    assert store.list_spaces() == []


def test_reopen_sees_everything(store_url: str) -> None:
    vectors = unit_vectors(200)
    first = connect(store_url)
    first.ensure_space(SPACE)
    first.upsert(SPACE.name, records(vectors))
    first.search(SPACE.name, vectors[:1], k=1)
    first.flush()
    first.delete(SPACE.name, [7])  # written after the flush: the saved index is stale
    first.close()
    second = connect(store_url)
    assert second.count(SPACE.name) == 199
    hits = second.search(SPACE.name, vectors[5:8], k=1)
    assert [row[0].id for row in hits[:2]] == [5, 6]
    assert hits[2][0].id != 7


def test_two_handles_see_each_others_writes(store_url: str) -> None:
    a, b = connect(store_url), connect(store_url)
    a.ensure_space(SPACE)
    vectors = unit_vectors(20)
    a.upsert(SPACE.name, records(vectors[:10]))
    assert b.search(SPACE.name, vectors[:1], k=1)[0][0].id == 0
    a.upsert(SPACE.name, records(vectors[10:], start=10))
    a.delete(SPACE.name, [0])
    assert b.search(SPACE.name, vectors[15:16], k=1)[0][0].id == 15
    assert all(h.id != 0 for h in b.search(SPACE.name, vectors[:1], k=20)[0])
    a.close()
    b.close()


def test_unknown_scheme_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"sqlite.*milvus"):
        open_store("redis://localhost")


def test_credentials_stay_out_of_store_urls() -> None:
    with pytest.raises(ConfigError, match="PICMATCH_STORE_TOKEN"):
        open_store("milvus://root:secret@localhost:19530")


def test_iter_records_streams_every_record_in_bounded_batches(store: VectorStore) -> None:
    vectors = unit_vectors(23)
    store.upsert(SPACE.name, records(vectors))
    batches = list(store.iter_records(SPACE.name, batch=5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    seen = {r.id: r for batch in batches for r in batch}
    assert sorted(seen) == list(range(23))
    np.testing.assert_allclose(seen[7].vector, vectors[7])
    assert seen[7].payload == store.get(SPACE.name, [7])[0].payload


def test_a_missing_space_reads_as_empty(store: VectorStore) -> None:
    gone = "no_such_space"
    assert store.get_space(gone) is None
    assert store.count(gone) == 0
    assert store.get(gone, [1, 2]) == []
    assert list(store.iter_payloads(gone)) == []
    assert list(store.iter_records(gone)) == []
    assert store.ids_in_folders(gone, ["/photos"]) == []
    assert store.search(gone, unit_vectors(2), k=3) == [[], []]
    assert store.index_info(gone) == {}
    store.delete(gone, [1])
    store.drop_space(gone)
    with pytest.raises(StoreError):
        store.upsert(gone, records(unit_vectors(1)))


def test_ids_in_folders_selects_inside_the_store(store: VectorStore) -> None:
    vectors = unit_vectors(30)
    store.upsert(SPACE.name, records(vectors[:10], "/a"))
    store.upsert(SPACE.name, records(vectors[10:20], "/a2", start=10))
    store.upsert(SPACE.name, records(vectors[20:], "/a/deep/er", start=20))
    assert store.ids_in_folders(SPACE.name, ["/a"]) == [*range(10), *range(20, 30)]
    assert store.ids_in_folders(SPACE.name, ["/a2/", "/a/deep"]) == list(range(10, 30))
    assert store.ids_in_folders(SPACE.name, ["/a/3.jpg"]) == [3]  # a file names itself
    assert store.ids_in_folders(SPACE.name, ["/b"]) == []
    assert store.ids_in_folders(SPACE.name, []) == []
    assert store.ids_in_folders(SPACE.name, ["/"]) == list(range(30))


def test_names_that_are_not_utf8_round_trip(store: VectorStore) -> None:
    odd = "/photos/caf\udce9/\udcff.jpg"  # bytes 0xe9 and 0xff as os.fsdecode gives them
    p = Payload(odd, "h", 1, 2, 3, 4)
    store.upsert(SPACE.name, [Record(9, unit_vectors(1)[0], p)])
    assert store.get(SPACE.name, [9])[0].payload.path == odd
    assert store.ids_in_folders(SPACE.name, ["/photos/caf\udce9"]) == [9]
    hit = store.search(SPACE.name, unit_vectors(1), k=1, flt=SearchFilter(("/photos/caf\udce9",)))
    assert hit[0][0].payload.path == odd


def test_roots_are_shared_by_every_handle(store_url: str) -> None:
    a, b = connect(store_url), connect(store_url)
    odd = "/photos/caf\udce9"  # a folder name that is not UTF-8
    a.add_roots(["/photos/2024", odd])
    b.add_roots(["/photos/2024", "/other"])
    assert a.roots() == b.roots() == ["/photos/2024", odd, "/other"]
    b.remove_roots(["/photos/2024"])
    assert a.roots() == [odd, "/other"]
    a.close()
    b.close()


def test_upsert_replacing_drops_the_replaced_records(store: VectorStore) -> None:
    vectors = unit_vectors(6)
    store.upsert(SPACE.name, records(vectors[:3]))
    moved = [Record(10 + r.id, r.vector, r.payload) for r in records(vectors[:2])]
    store.upsert(SPACE.name, moved, replacing=[0, 1])
    assert sorted(i for i, _ in store.iter_payloads(SPACE.name)) == [2, 10, 11]
    assert store.search(SPACE.name, vectors[:1], k=1)[0][0].id == 10


def test_index_info_names_the_kind_and_counts_the_vectors(store: VectorStore) -> None:
    store.upsert(SPACE.name, records(unit_vectors(12)))
    store.flush()
    info = store.index_info(SPACE.name)
    assert isinstance(info["kind"], str) and info["kind"]
    assert info["vectors"] == 12


def test_negative_ids_are_records_like_any_other(store: VectorStore) -> None:
    store.upsert(SPACE.name, records(unit_vectors(3), start=-1))  # ids -1, 0, 1
    batches = list(store.iter_records(SPACE.name, batch=2))
    assert sorted(r.id for b in batches for r in b) == [-1, 0, 1]
    assert [i for i, _ in store.iter_payloads(SPACE.name)] == [-1, 0, 1]
    assert store.ids_in_folders(SPACE.name, ["/photos"]) == [-1, 0, 1]
