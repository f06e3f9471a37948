"""GET /api/health, GET /api/library, POST /api/index and GET /api/jobs/{id}."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from picmatch import __version__
from picmatch.errors import LibraryNotFoundError
from picmatch.library import open_library
from tests.api.conftest import IndexedLibrary
from tests.imagegen import synthetic

pytestmark = pytest.mark.model


def _wait_for_job(client: TestClient, url: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {url} did not finish in {timeout} s")


def test_health(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "version": __version__}


def test_library_stats(client: TestClient, indexed: IndexedLibrary) -> None:
    body = client.get("/api/library").json()
    assert body["images"] == len(indexed.photos)
    assert body["model"] == "efficientnet-lite0"
    assert body["dim"] == 1280
    assert body["roots"] == [str(indexed.root)]
    assert body["allowed_roots"] == [str(indexed.root)]  # default: the library's own roots
    assert body["path"] == str(indexed.library)
    assert body["store_bytes"] > 0 and body["max_upload_bytes"] > 0


def test_index_a_new_folder_inside_an_allowed_root(
    library_copy: IndexedLibrary, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    new = allowed / "holiday"
    new.mkdir(parents=True)
    for seed in (11, 12, 13):
        synthetic(seed).save(new / f"s{seed}.png")
    client = make_client(library_copy, allowed_roots=(allowed,))
    assert client.get("/api/library").json()["allowed_roots"] == [str(allowed)]

    started = client.post("/api/index", json={"path": str(new)})
    assert started.status_code == 202, started.text
    job = _wait_for_job(client, started.json()["url"])
    assert job["state"] == "done", job
    assert job["path"] == str(new.resolve())
    assert job["report"]["added"] == 3 and job["report"]["skipped"] == []
    assert job["error"] is None and job["finished_at"] >= job["created_at"]
    assert client.get("/api/library").json()["images"] == len(library_copy.photos) + 3
    hits = client.post("/api/search", json={"path": str(new / "s12.png"), "k": 1}).json()
    assert hits["hits"][0]["path"] == str(new / "s12.png")


def test_reindexing_an_existing_root_is_allowed_by_default(
    library_copy: IndexedLibrary, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(library_copy)
    synthetic(21).save(library_copy.root / "more" / "new.png")
    started = client.post("/api/index", json={"path": str(library_copy.root / "more")})
    assert started.status_code == 202, started.text
    job = _wait_for_job(client, started.json()["url"])
    assert (job["state"], job["report"]["added"], job["report"]["unchanged"]) == ("done", 1, 2)
    assert job["phase"] == "done" and job["done"] == job["total"]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/etc", 403, "outside the folders this server may index"),
        ("relative/folder", 400, "absolute path"),
    ],
)
def test_index_refusals(client: TestClient, path: str, status: int, words: str) -> None:
    response = client.post("/api/index", json={"path": path})
    assert response.status_code == status
    assert words in response.json()["error"]


def test_index_refuses_missing_folders_and_escapes(
    client: TestClient, indexed: IndexedLibrary, tmp_path: Path
) -> None:
    missing = client.post("/api/index", json={"path": str(indexed.root / "nope")})
    assert missing.status_code == 404
    escape = client.post("/api/index", json={"path": str(indexed.root / ".." / "..")})
    assert escape.status_code == 403
    link = tmp_path / "link-out"
    link.symlink_to("/etc")
    assert client.post("/api/index", json={"path": str(link)}).status_code == 403
    assert client.post("/api/index", json={"folder": "/x"}).status_code == 422


def test_an_empty_library_with_no_allowed_roots_may_index_nothing(
    make_client: Callable[..., TestClient], tmp_path: Path, model_cache: Path
) -> None:
    open_library(tmp_path / "library", cache_dir=model_cache).close()  # created, no roots
    client = make_client(IndexedLibrary(tmp_path, tmp_path / "library", {}))
    response = client.post("/api/index", json={"path": str(tmp_path)})
    assert response.status_code == 403
    assert "--allowed-root" in response.json()["error"]
    assert client.get("/api/library").json()["images"] == 0


def test_a_missing_library_is_created_only_with_allowed_roots(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    missing = IndexedLibrary(tmp_path, tmp_path / "library", {})
    with pytest.raises(LibraryNotFoundError):
        make_client(missing)
    client = make_client(missing, allowed_roots=(tmp_path,))
    assert client.get("/api/library").json()["images"] == 0
    assert (tmp_path / "library" / "library.json").is_file()


def test_unknown_job_is_404(client: TestClient) -> None:
    response = client.get("/api/jobs/not-a-job")
    assert response.status_code == 404
    assert "no indexing job" in response.json()["error"]
