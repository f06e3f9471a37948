"""The app as a whole: the page, the docs, error bodies, the catch-all, and concurrent use."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from picmatch.errors import (
    ConfigError,
    ImageDecodeError,
    ImageTooLargeError,
    LibraryNotFoundError,
    ModelError,
    NotIndexedError,
    PicmatchError,
    SpaceMismatchError,
    StoreError,
)
from picmatch.indexer import record_id
from picmatch.server.http_errors import INTERNAL_ERROR, status_for
from picmatch.server.state import ServerState
from tests.api.conftest import IndexedLibrary, upload

pytestmark = pytest.mark.model


def test_the_page_and_its_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/search", "/api/library", "/api/index", "/api/jobs/{job_id}", "/api/health",
        "/api/images/{image_id}/thumbnail", "/api/images/{image_id}/file",
    ):  # fmt: skip
        assert path in paths
    content = paths["/api/search"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}


def test_unknown_routes_and_methods_get_json_errors(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong_method = client.get("/api/search")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotIndexedError("x"), 404),
        (ImageDecodeError("x", "bad"), 422),
        (ImageTooLargeError("x", "too many pixels"), 422),
        (ConfigError("x"), 400),
        (SpaceMismatchError("x"), 409),
        (LibraryNotFoundError("x"), 503),
        (ModelError("x"), 503),
        (StoreError("x"), 503),
        (PicmatchError("x"), 400),
    ],
)
def test_status_of_each_error(error: PicmatchError, status: int) -> None:
    assert status_for(error) == status


def test_an_unexpected_error_is_500_without_details(
    indexed: IndexedLibrary, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(indexed)
    state = client.app.state.picmatch  # type: ignore[attr-defined]
    assert isinstance(state, ServerState)

    def broken() -> None:
        raise RuntimeError("secret internal detail /home/user/x.py")

    monkeypatch.setattr(state.library, "stats", broken)
    response = client.get("/api/library")
    assert response.status_code == 500
    assert response.json() == {"error": INTERNAL_ERROR}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_library_errors_become_4xx_json(
    indexed: IndexedLibrary, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(indexed)
    state = client.app.state.picmatch  # type: ignore[attr-defined]

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConfigError("the number of results must be between 1 and 10")

    monkeypatch.setattr(state.library, "search_id", refuse)
    response = client.post("/api/search", json={"id": "1"})
    assert response.status_code == 400
    assert response.json() == {"error": "the number of results must be between 1 and 10"}


def test_concurrent_searches_and_thumbnails(client: TestClient, indexed: IndexedLibrary) -> None:
    names = ["chelsea", "rocket", "coins", "moon"] * 4

    def search(name: str) -> str:
        response = upload(client, Path(indexed.path(name)).read_bytes(), k=3)
        assert response.status_code == 200, response.text
        return str(response.json()["hits"][0]["path"])

    def thumbnail(name: str) -> int:
        url = f"/api/images/{record_id(indexed.path(name))}/thumbnail?size=512"
        return client.get(url).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(search, names))
        codes = list(pool.map(thumbnail, names))
    assert found == [indexed.path(n) for n in names]
    assert codes == [200] * len(names)
