"""GET /api/images/{id}/thumbnail and /file: caching, and refusing what must not be served."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from picmatch.indexer import record_id
from picmatch.server.paths import servable_file
from tests.api.conftest import IndexedLibrary
from tests.imagegen import synthetic

pytestmark = pytest.mark.model


def _id(path: str | Path) -> str:
    return str(record_id(str(path)))


def test_thumbnail_is_a_cached_jpeg_with_an_etag(
    client: TestClient, indexed: IndexedLibrary
) -> None:
    url = f"/api/images/{_id(indexed.path('chelsea'))}/thumbnail"
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert "max-age" in response.headers["cache-control"]
    with Image.open(io.BytesIO(response.content)) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) == 256 and thumb.size[0] > thumb.size[1]  # 451 x 300, landscape
    cached = list((indexed.library / "thumbnails").rglob("*.jpg"))
    assert cached, "the thumbnail is cached in the library folder"
    etag = response.headers["etag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_thumbnail_sizes(client: TestClient, indexed: IndexedLibrary) -> None:
    url = f"/api/images/{_id(indexed.path('astronaut'))}/thumbnail"
    small = client.get(url, params={"size": 128})
    with Image.open(io.BytesIO(small.content)) as thumb:
        assert max(thumb.size) == 128
    assert small.headers["etag"] != client.get(url).headers["etag"]
    refused = client.get(url, params={"size": 100})
    assert refused.status_code == 422
    assert "128" in refused.json()["error"]


def test_file_serves_the_original(client: TestClient, indexed: IndexedLibrary) -> None:
    response = client.get(f"/api/images/{_id(indexed.path('coffee'))}/file")
    assert response.status_code == 200
    assert response.content == Path(indexed.path("coffee")).read_bytes()
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline")


@pytest.mark.parametrize("kind", ["thumbnail", "file"])
@pytest.mark.parametrize(
    ("image_id", "status"),
    [("12345", 404), (str(2**63), 404), ("abc", 422), ("..%2F..%2Fetc%2Fpasswd", 404)],
)
def test_unknown_or_malformed_ids(
    client: TestClient, kind: str, image_id: str, status: int
) -> None:
    response = client.get(f"/api/images/{image_id}/{kind}")
    assert response.status_code == status
    assert "error" in response.json()


def test_traversal_in_the_url_never_reaches_a_file(client: TestClient) -> None:
    for url in ("/api/images/../../etc/passwd", "/api/images/1/../../../etc/passwd"):
        response = client.get(url)
        assert response.status_code == 404
        assert "root:" not in response.text


@pytest.mark.parametrize("kind", ["thumbnail", "file"])
def test_a_deleted_file_is_404(
    library_copy: IndexedLibrary, make_client: Callable[..., TestClient], kind: str
) -> None:
    client = make_client(library_copy)
    Path(library_copy.path("moon")).unlink()
    response = client.get(f"/api/images/{_id(library_copy.path('moon'))}/{kind}")
    assert response.status_code == 404
    assert "no image with id" in response.json()["error"]


@pytest.mark.parametrize("kind", ["thumbnail", "file"])
def test_a_symlink_out_of_the_roots_is_404(
    library_copy: IndexedLibrary,
    make_client: Callable[..., TestClient],
    tmp_path: Path,
    kind: str,
) -> None:
    outside = tmp_path / "secret.png"
    synthetic(7).save(outside)
    indexed_path = Path(library_copy.path("brick"))
    indexed_path.unlink()
    indexed_path.symlink_to(outside)  # the record stays; the file now leads out of the root
    client = make_client(library_copy)
    response = client.get(f"/api/images/{_id(indexed_path)}/{kind}")
    assert response.status_code == 404
    assert response.content != outside.read_bytes()


def test_a_symlink_inside_the_roots_is_served(
    library_copy: IndexedLibrary, make_client: Callable[..., TestClient]
) -> None:
    indexed_path = Path(library_copy.path("brick"))
    indexed_path.unlink()
    indexed_path.symlink_to(library_copy.photos["coins"])
    client = make_client(library_copy)
    response = client.get(f"/api/images/{_id(indexed_path)}/file")
    assert response.status_code == 200
    assert response.content == library_copy.photos["coins"].read_bytes()


def test_servable_file_resolves_dot_dot_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "in.jpg").write_bytes(b"x")
    (tmp_path / "out.jpg").write_bytes(b"y")
    os.symlink(tmp_path / "out.jpg", root / "link.jpg")
    assert servable_file(str(root / "in.jpg"), [root]) == (root / "in.jpg").resolve()
    assert servable_file(str(root / ".." / "out.jpg"), [root]) is None
    assert servable_file(str(root / "link.jpg"), [root]) is None
    assert servable_file(str(root / "missing.jpg"), [root]) is None
    assert servable_file(str(root), [root]) is None  # a folder is not a file
    assert servable_file(str(root / "in.jpg"), [tmp_path / "gone"]) is None
