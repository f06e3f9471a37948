"""Shared fixtures: real photos, a library folder, one model cache and one Milvus server per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagegen import write_photos
from tests.milvus_server import MilvusServer, drop_database, loopback_only, served


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache for the whole run, so the ONNX conversion happens once."""
    shared = os.environ.get("PICMATCH_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("model-cache")


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    write_photos(folder)
    return folder


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return tmp_path / "library"


@pytest.fixture
def open_lib(library_dir: Path, model_cache: Path) -> Iterator[object]:
    from picmatch import open_library

    libs = []

    def _open(**kwargs: object) -> object:
        lib = open_library(library_dir, cache_dir=model_cache, **kwargs)  # type: ignore[arg-type]
        libs.append(lib)
        return lib

    yield _open
    for lib in libs:
        lib.close()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    if not loopback_only():
        reason = (
            "the Milvus tests start a server that binds every interface, so they run only in a "
            "loopback-only network namespace: run `make test` as root (scripts/isolated.sh)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI runs them all; none may be skipped there
        pytest.skip(reason)
    yield from served(tmp_path_factory.mktemp("milvus"))


@pytest.fixture
def milvus_url(milvus_server: MilvusServer) -> Iterator[str]:
    """A store URL naming a fresh, empty database on the session's Milvus server."""
    url = milvus_server.url()
    yield url
    drop_database(url)
