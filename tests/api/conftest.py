"""Shared fixtures for the HTTP API: one real library, indexed once with the real model.

`library_copy` gives a test its own copy (photos and library) when it changes files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from picmatch.config import Settings
from picmatch.library import open_library
from picmatch.server import create_app
from tests.imagegen import synthetic, write_photos

BASE_URL = "http://127.0.0.1:8000"  # a Host the server answers to (see host_check.py)
PHOTO_NAMES = ("chelsea", "astronaut", "coffee", "rocket", "camera", "coins", "moon", "brick")
TOKEN = "s3cret-token-for-tests"


@dataclass(frozen=True)
class IndexedLibrary:
    root: Path  # the indexed folder
    library: Path  # the library folder
    photos: dict[str, Path]  # name -> file, inside root (and root/more/ for "more-*")

    def path(self, name: str) -> str:
        return str(self.photos[name])


def build_library(base: Path, model_cache: Path) -> IndexedLibrary:
    root = base / "photos"
    photos = write_photos(root, PHOTO_NAMES)
    (root / "more").mkdir()
    for seed in (1, 2):
        photos[f"more-{seed}"] = root / "more" / f"synthetic-{seed}.png"
        synthetic(seed).save(photos[f"more-{seed}"])
    with open_library(base / "library", cache_dir=model_cache) as lib:
        report = lib.index([root])
    assert report.skipped == [] and report.total_indexed == len(photos)
    return IndexedLibrary(root, base / "library", photos)


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> IndexedLibrary:
    """Built once per run; tests must not change its files (use `library_copy` for that)."""
    return build_library(tmp_path_factory.mktemp("api"), model_cache)


@pytest.fixture
def library_copy(tmp_path: Path, model_cache: Path) -> IndexedLibrary:
    """A private library for tests that change, move or delete files."""
    return build_library(tmp_path, model_cache)


@pytest.fixture
def settings_for(model_cache: Path) -> Callable[..., Settings]:
    def make(library: IndexedLibrary, **overrides: Any) -> Settings:
        base = Settings(library=library.library, cache_dir=model_cache)
        return replace(base, **overrides)

    return make


@pytest.fixture
def make_client(settings_for: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start an app (lifespan included) on a library with settings overrides; closed after."""
    clients: list[TestClient] = []

    def start(library: IndexedLibrary, **overrides: Any) -> TestClient:
        client = TestClient(create_app(settings_for(library, **overrides)), base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(indexed: IndexedLibrary, model_cache: Path) -> Iterator[TestClient]:
    """A token-less app on the shared library, kept for the whole run."""
    settings = Settings(library=indexed.library, cache_dir=model_cache)
    with TestClient(create_app(settings), base_url=BASE_URL) as shared:
        yield shared


def upload(client: TestClient, data: bytes, **fields: Any) -> Any:
    files = {"image": ("query.jpg", data, "image/jpeg")}
    return client.post("/api/search", files=files, data=fields)
