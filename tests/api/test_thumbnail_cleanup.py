"""Thumbnails of images removed or changed are deleted with them (issue 7, fault 13)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from picmatch.indexer import record_id
from picmatch.library import open_library
from tests.api.conftest import IndexedLibrary
from tests.imagegen import synthetic

pytestmark = pytest.mark.model


def test_thumbnails_go_with_their_images(
    library_copy: IndexedLibrary, model_cache: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(library_copy)
    for name in ("chelsea", "coffee", "rocket", "more-1"):
        image_id = record_id(library_copy.path(name))
        assert client.get(f"/api/images/{image_id}/thumbnail").status_code == 200
    cache = library_copy.library / "thumbnails"

    def cached() -> set[str]:
        return {p.name.split("-")[0] for p in cache.rglob("*.jpg")}

    assert len(cached()) == 4
    Path(library_copy.path("chelsea")).unlink()  # deleted
    synthetic(77).save(library_copy.path("coffee"))  # rewritten: other bytes
    with open_library(library_copy.library, cache_dir=model_cache) as lib:
        lib.index([library_copy.root])
        assert cached() == {f"{record_id(library_copy.path(n)):016x}" for n in ("rocket", "more-1")}
        lib.remove([library_copy.root / "more"])
    assert cached() == {f"{record_id(library_copy.path('rocket')):016x}"}
