"""GET /api/duplicates and the move / undo actions: behind the token, inside the roots only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from picmatch.config import Settings
from picmatch.library import open_library
from picmatch.server import create_app
from tests.api.conftest import BASE_URL, TOKEN
from tests.imagegen import write_dupes, write_photos

pytestmark = pytest.mark.model

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def dupes_client(tmp_path: Path, model_cache: Path) -> Any:
    root = tmp_path / "photos"
    write_photos(root, ("chelsea", "astronaut", "coffee", "rocket", "camera"))
    write_dupes(root)
    library = tmp_path / "library"
    with open_library(library, cache_dir=model_cache) as lib:
        lib.index([root])
    settings = Settings(library=library, cache_dir=model_cache, token=TOKEN)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        yield client, root


Client = tuple[TestClient, Path]


def test_groups_are_listed_with_evidence_and_paged(dupes_client: Client) -> None:
    client, root = dupes_client
    assert client.get("/api/duplicates").status_code == 401
    body = client.get("/api/duplicates", headers=BEARER).json()
    assert (body["tier"], body["images"], body["total_groups"], body["redundant"]) == (
        "copy",
        18,
        4,
        13,
    )
    assert "keeper:" in body["keeper_rule"] and "embedding score" in body["rule"]
    first = body["groups"][0]
    assert first["keeper"] == first["members"][0]["id"] and first["members"][0]["keeper"]
    member = first["members"][1]
    assert isinstance(member["id"], str) and 0 < member["score"] <= 1 and member["size"] > 0
    page = client.get("/api/duplicates?offset=3&limit=2", headers=BEARER).json()
    assert len(page["groups"]) == 1 and page["groups"][0] == body["groups"][3]
    exact = client.get("/api/duplicates?tier=exact", headers=BEARER).json()
    assert [Path(m["path"]).name for m in exact["groups"][0]["members"]] == [
        "rocket.jpg",
        "rocket-copy.jpg",
    ]
    only = client.get(f"/api/duplicates?folder={root / 'nowhere'}", headers=BEARER).json()
    assert only["groups"] == []
    bad = client.get("/api/duplicates?tier=nearly", headers=BEARER)
    assert bad.status_code == 422 and "error" in bad.json()


def test_move_then_undo_from_the_api(dupes_client: Client, tmp_path: Path) -> None:
    client, root = dupes_client
    group = client.get("/api/duplicates", headers=BEARER).json()["groups"][0]
    ids = [m["id"] for m in group["members"][1:]]
    paths = [Path(m["path"]) for m in group["members"][1:]]

    outside = client.post(
        "/api/duplicates/move", json={"ids": ids, "move_to": str(tmp_path / "out")}, headers=BEARER
    )
    assert outside.status_code == 403 and "outside the folders" in outside.json()["error"]
    assert (
        client.post(
            "/api/duplicates/move", json={"ids": ids, "move_to": "rel"}, headers=BEARER
        ).status_code
        == 422
    )
    unknown = client.post(
        "/api/duplicates/move", json={"ids": ["12345"], "move_to": str(root / "r")}, headers=BEARER
    )
    assert unknown.status_code == 404
    assert (
        client.post(
            "/api/duplicates/move", json={"ids": ids, "move_to": str(root / "r")}
        ).status_code
        == 401
    )

    review = root / "review"
    moved = client.post(
        "/api/duplicates/move", json={"ids": ids, "move_to": str(review)}, headers=BEARER
    ).json()
    assert len(moved["done"]) == 4 and moved["skipped"] == []
    assert all(not p.exists() for p in paths) and all((review / p.name).exists() for p in paths)
    after = client.get("/api/duplicates", headers=BEARER).json()
    assert after["total_groups"] == 3  # the moved copies are out, the review folder is skipped
    listed = client.get("/api/duplicates/actions", headers=BEARER).json()["actions"]
    assert listed[0]["manifest"] == moved["manifest"] and listed[0]["files"] == 4
    assert not listed[0]["undone"]

    for name, status in (("../library.json", 422), ("nope.json", 404)):
        assert (
            client.post("/api/duplicates/undo", json={"manifest": name}, headers=BEARER).status_code
            == status
        )
    undone = client.post(
        "/api/duplicates/undo", json={"manifest": moved["manifest"]}, headers=BEARER
    )
    assert undone.status_code == 200 and len(undone.json()["done"]) == 4
    assert all(p.exists() for p in paths)
    assert client.get("/api/duplicates", headers=BEARER).json()["total_groups"] == 4
    again = client.post(
        "/api/duplicates/undo", json={"manifest": moved["manifest"]}, headers=BEARER
    )
    assert again.status_code == 400 and "already undone" in again.json()["error"]
