"""Images whose names are not valid UTF-8 are searchable and servable over HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from picmatch.indexer import record_id
from picmatch.library import open_library
from tests.api.conftest import IndexedLibrary
from tests.imagegen import synthetic

pytestmark = pytest.mark.model


def test_odd_names_are_served(
    library_copy: IndexedLibrary, model_cache: Path, make_client: Callable[..., TestClient]
) -> None:
    odd_dir = library_copy.root / os.fsdecode(b"caf\xe9")
    odd_dir.mkdir()
    odd_file = odd_dir / os.fsdecode(b"\xff.png")
    synthetic(11).save(odd_file)
    with open_library(library_copy.library, cache_dir=model_cache) as lib:
        assert lib.index([library_copy.root]).added == 1
    client = make_client(library_copy)
    image_id = str(record_id(str(odd_file)))

    hits = client.post("/api/search", json={"id": image_id, "k": 1}).json()["hits"]
    assert hits[0]["id"] == image_id
    assert hits[0]["path"] == str(library_copy.root) + "/caf\\xe9/\\xff.png"
    by_path = client.post("/api/search", json={"path": hits[0]["path"], "k": 1})
    assert by_path.status_code == 200 and by_path.json()["hits"][0]["id"] == image_id

    original = client.get(f"/api/images/{image_id}/file")
    assert original.status_code == 200 and original.content == odd_file.read_bytes()
    assert client.get(f"/api/images/{image_id}/thumbnail").status_code == 200
    job = client.post("/api/index", json={"path": str(library_copy.root)}).json()
    assert client.get(job["url"]).status_code == 200


def test_roots_added_by_another_process_are_served_and_kept(
    library_copy: IndexedLibrary, model_cache: Path, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(library_copy)  # running before the CLI adds a root
    other = library_copy.root.parent / "added-later"
    other.mkdir()
    synthetic(21).save(other / "new.png")
    with open_library(library_copy.library, cache_dir=model_cache) as cli_lib:
        cli_lib.index([other])
    image_id = str(record_id(str(other / "new.png")))
    assert client.get(f"/api/images/{image_id}/thumbnail").status_code == 200
    assert str(other) in client.get("/api/library").json()["roots"]

    job = client.post("/api/index", json={"path": str(library_copy.root)}).json()
    for _ in range(600):
        if client.get(job["url"]).json()["state"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert client.get(job["url"]).json()["state"] == "done"
    with open_library(library_copy.library, cache_dir=model_cache) as fresh:
        assert set(fresh.roots) == {library_copy.root, other}  # the server job kept it
