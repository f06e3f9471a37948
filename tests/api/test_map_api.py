"""GET /api/map, /api/map/sheets/{n}, /api/readings, /api/explain; the index job maps new images."""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from picmatch.library import open_library
from picmatch.map_store import refresh_map
from tests.api.conftest import TOKEN, IndexedLibrary
from tests.map_images import write_families

pytestmark = pytest.mark.model


def _wait_for_job(client: TestClient, url: str, timeout: float = 300) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(url).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {url} did not finish in {timeout} s")


def test_map_page_points_and_sheets(
    library_copy: IndexedLibrary, make_client: Callable[..., TestClient], model_cache: Path
) -> None:
    client = make_client(library_copy, token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    page = client.get("/map")
    assert page.status_code == 200 and "static/map.js" in page.text
    assert 'href="/map"' in client.get("/").text, "the main page links to the map"

    missing = client.get("/api/map", headers=auth)
    assert missing.status_code == 404
    assert "picmatch map --library" in missing.json()["error"]
    assert client.get("/api/map").status_code == 401

    with open_library(library_copy.library, cache_dir=model_cache) as lib:
        refresh_map(lib)
    response = client.get("/api/map", headers={**auth, "Accept-Encoding": "gzip"})
    assert response.status_code == 200
    doc = response.json()  # httpx undoes the gzip
    assert doc["count"] == len(library_copy.photos) == len(doc["ids"]) == len(doc["names"])
    assert sorted(doc["names"]) == sorted(p.name for p in library_copy.photos.values())
    assert all(0 <= v <= 1 for v in doc["x"] + doc["y"])
    folders = {doc["folders"][k] for k in doc["folder"]}
    assert folders == {str(library_copy.root), str(library_copy.root / "more")}
    plain = client.get("/api/map", headers={**auth, "Accept-Encoding": "identity"})
    assert json.loads(plain.content) == doc
    assert len(gzip.compress(plain.content)) < len(plain.content)

    sheet = client.get(f"/api/map/sheets/0?token={TOKEN}")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(sheet.content)).size == (1024, 1024)
    assert client.get(f"/api/map/sheets/7?token={TOKEN}").status_code == 404
    assert client.get("/api/map/sheets/0").status_code == 401


def test_readings_and_heat_map(client: TestClient, indexed: IndexedLibrary) -> None:
    bands = client.get("/api/readings").json()["readings"]
    assert [b["min"] for b in bands] == sorted((b["min"] for b in bands), reverse=True)
    assert bands[-1]["words"] == "weak match"

    ids = {
        h["path"]: h["id"]
        for h in client.post("/api/search", json={"path": indexed.path("chelsea"), "k": 20}).json()[
            "hits"
        ]
    }
    cat, rocket = ids[indexed.path("chelsea")], ids[indexed.path("rocket")]
    response = client.get(f"/api/explain?a={cat}&b={rocket}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.height == 256 and image.width > 2 * 256  # two panels side by side

    assert client.get(f"/api/explain?a={cat}&b=123").status_code == 404
    assert client.get(f"/api/explain?a={cat}&b=nope").status_code == 422
    text = client.post(f"/api/explain?b={rocket}", json={"text": "a cat"})
    assert text.status_code == 422 and "two images" in text.json()["error"]
    with indexed.photos["chelsea"].open("rb") as f:
        upload = client.post(f"/api/explain?b={cat}", files={"image": ("q.jpg", f, "image/jpeg")})
    assert upload.status_code == 200 and upload.headers["content-type"] == "image/png"


def test_the_same_image_agrees_with_itself_everywhere(
    indexed: IndexedLibrary, model_cache: Path
) -> None:
    import numpy as np

    from picmatch.explain import FeatureMaps, agreement
    from picmatch.models.base import power_normalize
    from tests.imagegen import photo

    with open_library(indexed.library, cache_dir=model_cache) as lib:
        maps = FeatureMaps(lib.embedder)
        cat = np.asarray(photo("chelsea"))
        rocket = np.asarray(photo("rocket"))
        same, _ = agreement(maps.local_features(cat), maps.local_features(cat))
        other, _ = agreement(maps.local_features(cat), maps.local_features(rocket))
        assert same.shape == (7, 7)
        assert np.allclose(same, 1.0, atol=1e-4)
        assert other.mean() < same.mean() - 0.1
        # The map is the one the descriptor pools: its mean, power-normalised, is the embedding.
        assert lib.params.get("flip", "none") == "none"
        pooled = power_normalize(maps.feature_map(cat).mean(axis=(0, 1))[None], maps.power)
        assert np.allclose(pooled, lib.embedder.embed_images([cat]), atol=1e-5)


def test_an_index_job_refreshes_the_map(
    library_copy: IndexedLibrary, make_client: Callable[..., TestClient], model_cache: Path
) -> None:
    with open_library(library_copy.library, cache_dir=model_cache) as lib:
        refresh_map(lib)
    client = make_client(library_copy)
    added = write_families(library_copy.root / "new", 2)
    job = client.post("/api/index", json={"path": str(library_copy.root / "new")}).json()
    assert _wait_for_job(client, f"/api/jobs/{job['job_id']}")["state"] == "done"
    doc = client.get("/api/map").json()
    assert doc["count"] == len(library_copy.photos) + 4
    assert {p.name for ps in added.values() for p in ps} <= set(doc["names"])
