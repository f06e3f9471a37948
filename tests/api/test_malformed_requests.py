"""Hostile request bodies get a 4xx with a message, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import IndexedLibrary, upload

pytestmark = pytest.mark.model

DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("url", ["/api/search", "/api/index"])
def test_deeply_nested_json_is_a_400(client: TestClient, url: str) -> None:
    response = client.post(url, content=DEEP_JSON, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]


def test_a_nul_byte_in_an_index_path_is_a_422(
    make_client: Callable[..., TestClient], indexed: IndexedLibrary
) -> None:
    client = make_client(indexed, allowed_roots=(indexed.root,))
    response = client.post("/api/index", json={"path": f"{indexed.root}/a\x00b"})
    assert response.status_code == 422
    assert "NUL" in response.json()["error"]


def test_a_nul_byte_in_search_paths_is_a_422(client: TestClient, indexed: IndexedLibrary) -> None:
    bad = f"{indexed.root}/a\x00b"
    by_path = client.post("/api/search", json={"path": bad})
    in_folders = client.post("/api/search", json={"path": indexed.path("coffee"), "folders": [bad]})
    in_form = upload(client, indexed.photos["coffee"].read_bytes(), folders=bad)
    for response in (by_path, in_folders, in_form):
        assert response.status_code == 422
        assert "NUL" in response.json()["error"]
