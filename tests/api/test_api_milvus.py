"""The HTTP API's main search tests once more, with the library on a real Milvus server."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from picmatch import open_library
from picmatch.config import Settings
from picmatch.server import create_app
from tests.api import test_search as api
from tests.api.conftest import BASE_URL, IndexedLibrary, build_library
from tests.milvus_server import TOKEN

pytestmark = [pytest.mark.milvus, pytest.mark.model]


def test_http_api_main_routes_on_milvus(
    milvus_url: str, tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = _milvus_library(tmp_path, model_cache, milvus_url, monkeypatch)
    settings = Settings(library=library.library, cache_dir=model_cache, store_token=TOKEN)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        api.test_upload_finds_the_indexed_copy_first(client, library)
        api.test_search_by_indexed_path(client, library)
        api.test_k_min_score_and_folders(client, library)
        first = client.post("/api/search", json={"path": library.path("moon")}).json()
        thumb = client.get(f"/api/images/{first['hits'][0]['id']}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def _milvus_library(
    base: Path, model_cache: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> IndexedLibrary:
    """`build_library`, with the library created on the Milvus store first."""
    open_library(base / "library", cache_dir=model_cache, store=url, store_token=TOKEN).close()
    monkeypatch.setattr(
        "tests.api.conftest.open_library",
        lambda path, **kw: open_library(path, store_token=TOKEN, **kw),
    )
    return build_library(base, model_cache)
