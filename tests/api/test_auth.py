"""--token: every /api call but /api/health needs it; image URLs also take ?token=."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from picmatch.indexer import record_id
from tests.api.conftest import TOKEN, IndexedLibrary

pytestmark = pytest.mark.model

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def guarded(indexed: IndexedLibrary, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(indexed, token=TOKEN)


def _calls(indexed: IndexedLibrary) -> list[tuple[str, str, dict[str, object]]]:
    image = str(record_id(indexed.path("chelsea")))
    return [
        ("GET", "/api/library", {}),
        ("POST", "/api/search", {"json": {"id": image}}),
        ("POST", "/api/index", {"json": {"path": str(indexed.root)}}),
        ("GET", "/api/jobs/whatever", {}),
        ("GET", f"/api/images/{image}/thumbnail", {}),
        ("GET", f"/api/images/{image}/file", {}),
    ]


def test_every_api_call_needs_the_token(guarded: TestClient, indexed: IndexedLibrary) -> None:
    for method, url, kwargs in _calls(indexed):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = guarded.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 401, (method, url, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["error"]


def test_the_right_token_is_let_through(guarded: TestClient, indexed: IndexedLibrary) -> None:
    for method, url, kwargs in _calls(indexed):
        if url.startswith("/api/index"):
            continue  # would start a job; covered in test_library_and_jobs
        response = guarded.request(method, url, headers=BEARER, **kwargs)  # type: ignore[arg-type]
        assert response.status_code != 401, (method, url)


def test_health_and_the_page_need_no_token(guarded: TestClient) -> None:
    assert guarded.get("/api/health").status_code == 200
    assert guarded.get("/").status_code == 200
    assert guarded.get("/static/app.js").status_code == 200


def test_image_urls_take_the_token_as_a_query_parameter(
    guarded: TestClient, indexed: IndexedLibrary
) -> None:
    image = record_id(indexed.path("coffee"))
    file = guarded.get(f"/api/images/{image}/file", params={"token": TOKEN})
    assert file.status_code == 200
    assert file.content == Path(indexed.path("coffee")).read_bytes()
    thumb = guarded.get(f"/api/images/{image}/thumbnail", params={"token": TOKEN})
    assert thumb.status_code == 200
    wrong = guarded.get(f"/api/images/{image}/file", params={"token": "nope"})
    assert wrong.status_code == 401


def test_the_query_token_is_not_accepted_elsewhere(guarded: TestClient) -> None:
    assert guarded.get("/api/library", params={"token": TOKEN}).status_code == 401
