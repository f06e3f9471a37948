"""The whole library on a Milvus store gives the same answers as the embedded store for the same
images, and the same error types for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from picmatch import open_library
from picmatch.errors import NotIndexedError, PicmatchError, SpaceMismatchError, StoreError
from tests.imagegen import synthetic
from tests.milvus_server import TOKEN

pytestmark = [pytest.mark.milvus, pytest.mark.model]


def test_milvus_and_sqlite_give_the_same_answers(
    milvus_url: str, photo_dir: Path, tmp_path: Path, model_cache: Path
) -> None:
    for seed in range(6):  # near-identical images: ties and close scores
        synthetic(seed % 3).save(photo_dir / f"synthetic-{seed}.png")
    embedded = open_library(tmp_path / "embedded", cache_dir=model_cache)
    remote = open_library(
        tmp_path / "remote", cache_dir=model_cache, store=milvus_url, store_token=TOKEN
    )
    for lib in (embedded, remote):
        assert lib.index([photo_dir]).skipped == []
    assert remote.count() == embedded.count() == 20
    for query in sorted(photo_dir.iterdir()):
        a = embedded.search(query, k=10)
        b = remote.search(query, k=10)
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
        for x, y in zip(a, b, strict=True):  # the same hit, or a tie within 1e-4
            assert x.path == y.path or abs(x.score - y.score) < 1e-4
    folder_hits = remote.search(photo_dir / "coffee.jpg", k=20, folders=[photo_dir / "nope"])
    assert folder_hits == []
    for lib in (embedded, remote):
        with pytest.raises(NotIndexedError):
            lib.search_id(12345)
        with pytest.raises(PicmatchError, match="number of results"):
            lib.search(photo_dir / "coffee.jpg", k=0)
        with pytest.raises(SpaceMismatchError, match="dimension 7"):
            lib.store.search(lib.space, np.ones((1, 7), np.float32), k=3)
        with pytest.raises(StoreError, match="k must be"):
            lib.store.search(lib.space, np.ones((1, 1280), np.float32), k=0)
    coffee = photo_dir / "coffee.jpg"
    assert remote.remove([coffee]) == 1 == embedded.remove([coffee])
    assert all(h.path != str(coffee) for h in remote.search(coffee))
    vector = remote.query_vector(photo_dir / "moon.jpg")
    np.testing.assert_allclose(vector, embedded.query_vector(photo_dir / "moon.jpg"), atol=1e-6)
    embedded.close()
    remote.close()
