"""POST /api/search: uploads, indexed ids and paths, options, and every refusal."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import IndexedLibrary, upload

pytestmark = pytest.mark.model


def test_upload_finds_the_indexed_copy_first(client: TestClient, indexed: IndexedLibrary) -> None:
    response = upload(client, Path(indexed.path("chelsea")).read_bytes(), k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["took_ms"] > 0
    first = body["hits"][0]
    assert first["path"] == indexed.path("chelsea")
    assert first["score"] == pytest.approx(1.0, abs=1e-4)
    assert (first["width"], first["height"]) == (451, 300)
    assert isinstance(first["id"], str) and first["id"].isdigit()
    assert len(body["hits"]) == 5
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_ids_are_strings_that_round_trip_beyond_2_to_the_53(
    client: TestClient, indexed: IndexedLibrary
) -> None:
    hits = upload(client, Path(indexed.path("rocket")).read_bytes(), k=10).json()["hits"]
    assert any(int(h["id"]) > 2**53 for h in hits)  # ids are 63-bit: JSON numbers would break
    for hit in hits[:3]:
        again = client.post("/api/search", json={"id": hit["id"], "k": 1}).json()["hits"]
        assert again[0]["id"] == hit["id"]
        assert again[0]["path"] == hit["path"]


def test_search_by_indexed_path(client: TestClient, indexed: IndexedLibrary) -> None:
    response = client.post("/api/search", json={"path": indexed.path("coffee"), "k": 3})
    assert response.status_code == 200, response.text
    assert response.json()["hits"][0]["path"] == indexed.path("coffee")


def test_k_min_score_and_folders(client: TestClient, indexed: IndexedLibrary) -> None:
    query = {"path": indexed.path("more-1")}
    assert len(client.post("/api/search", json={**query, "k": 3}).json()["hits"]) == 3
    strict = client.post("/api/search", json={**query, "k": 10, "min_score": 0.999}).json()
    assert [h["path"] for h in strict["hits"]] == [indexed.path("more-1")]
    inside = client.post("/api/search", json={**query, "folders": [str(indexed.root / "more")]})
    paths = [h["path"] for h in inside.json()["hits"]]
    assert sorted(paths) == sorted([indexed.path("more-1"), indexed.path("more-2")])


def test_multipart_options_are_applied(client: TestClient, indexed: IndexedLibrary) -> None:
    data = Path(indexed.path("moon")).read_bytes()
    files = {"image": ("moon.jpg", data, "image/jpeg")}
    fields = {"k": "4", "min_score": "-1", "folders": [str(indexed.root)]}
    response = client.post("/api/search", files=files, data=fields)
    assert response.status_code == 200, response.text
    assert len(response.json()["hits"]) == 4
    none = client.post("/api/search", files=files, data={"folders": "/nowhere"}).json()
    assert none["hits"] == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"path": "/no/such/image.jpg"}, 404, "not an indexed image"),
        ({"path": "relative/image.jpg"}, 400, "absolute path"),
        ({"id": "12345"}, 404, "no image with id 12345"),
        ({"id": str(2**63)}, 404, "no image with id"),
        ({"id": str(2**64)}, 422, "id"),
        ({"id": "12a"}, 422, "id"),
        ({"id": "1", "path": "/x.jpg"}, 422, "exactly one"),
        ({"k": 3}, 422, "exactly one"),
        ({"id": "1", "k": 0}, 422, "k"),
        ({"id": "1", "k": 100_000}, 422, "k"),
        ({"id": "1", "min_score": 2}, 422, "min_score"),
        ({"id": "1", "colour": "red"}, 422, "colour"),
    ],
)
def test_json_refusals(
    client: TestClient, body: dict[str, object], status: int, words: str
) -> None:
    response = client.post("/api/search", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_a_non_image_upload_is_422_with_a_message(client: TestClient) -> None:
    response = upload(client, b"%PDF-1.4 this is not an image" * 10)
    assert response.status_code == 422
    assert "not an image" in response.json()["error"]


def test_an_empty_upload_or_a_missing_field_is_422(client: TestClient) -> None:
    assert "empty" in upload(client, b"").json()["error"]
    response = client.post("/api/search", files={"picture": ("a.jpg", b"x", "image/jpeg")})
    assert response.status_code == 422
    assert "'image'" in response.json()["error"]


def test_other_bodies_are_refused(client: TestClient) -> None:
    response = client.post("/api/search", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["error"]
    response = client.post(
        "/api/search", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.fixture
def small_limits(
    indexed: IndexedLibrary, make_client: Callable[..., TestClient]
) -> Iterator[TestClient]:
    yield make_client(indexed, max_upload_bytes=100_000, max_pixels=40_000)


def _jpeg(size: tuple[int, int], quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_upload_over_the_limit_is_413_from_content_length(small_limits: TestClient) -> None:
    response = upload(small_limits, b"\xff" * 400_000)
    assert response.status_code == 413
    assert "100000 bytes" in response.json()["error"]


def test_upload_over_the_limit_is_413_while_counting_a_chunked_body(
    small_limits: TestClient,
) -> None:
    boundary = "picmatchboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield head
        for _ in range(40):
            yield b"\xff" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = small_limits.post(
        "/api/search",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


def test_file_just_over_the_limit_is_413(small_limits: TestClient) -> None:
    # The body fits the limit plus multipart slack; the file itself does not.
    response = upload(small_limits, b"\xff" * 100_001)
    assert response.status_code == 413


def test_image_over_the_pixel_cap_is_422(small_limits: TestClient) -> None:
    response = upload(small_limits, _jpeg((400, 300)))  # 120k pixels > 40k, but < 100 kB
    assert response.status_code == 422
    assert "pixels" in response.json()["error"]
    assert upload(small_limits, _jpeg((150, 150))).status_code == 200
