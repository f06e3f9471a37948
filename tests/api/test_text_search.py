"""Text queries over HTTP: JSON {"text": ...}, the model picked by "model", clear 4xx errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from picmatch.config import Settings
from picmatch.library import open_library
from picmatch.server import create_app
from tests.api.conftest import BASE_URL
from tests.modelgen import COLOURS, write_clip_repo


def test_text_search_over_http(client: TestClient, tmp_path: Path, model_cache: Path) -> None:
    refused = client.post("/api/search", json={"text": "a red bicycle"})
    assert refused.status_code == 400 and "has no text model" in refused.json()["error"]
    both = client.post("/api/search", json={"text": "red", "id": "1"})
    assert both.status_code == 422 and "exactly one of" in both.json()["error"]

    photos = tmp_path / "photos"
    photos.mkdir()
    for name, rgb in COLOURS.items():
        Image.fromarray(np.full((40, 60, 3), rgb, np.uint8)).save(photos / f"{name}.png")
    spec = f"clip:{write_clip_repo(tmp_path / 'clip')}"
    with open_library(tmp_path / "lib", cache_dir=model_cache) as lib:
        lib.index([photos])
        lib.index([photos], model=spec)
    settings = Settings(library=tmp_path / "lib", cache_dir=model_cache)
    with TestClient(create_app(settings), base_url=BASE_URL) as app:
        info = app.get("/api/library").json()
        assert info["models"] == ["efficientnet-lite0", spec] and info["text_models"] == [spec]
        answer = app.post("/api/search", json={"text": "something blue", "model": spec, "k": 2})
        assert answer.status_code == 200, answer.text
        assert Path(answer.json()["hits"][0]["path"]).name == "blue.png"
