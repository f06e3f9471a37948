"""Slow searches never hold up the others: blocking work runs off the event loop, in bounded
groups of threads (model, store, files), so a queue of uploads leaves id searches, thumbnails
and /api/health free to answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from picmatch._sys import available_cpus
from picmatch.indexer import record_id
from picmatch.server.state import ServerState
from tests.api.conftest import IndexedLibrary, upload

pytestmark = pytest.mark.model

UPLOADS = 48  # more than the 40 threads starlette's default thread pool would share out
ANSWER_WITHIN = 20.0  # seconds; the uploads stay paused for longer than that


class PausedModel:
    """Wraps the real model's embed_images: every call waits until released, counting callers."""

    def __init__(self, embed: Callable[[Any], Any]) -> None:
        self.embed = embed
        self.release = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, images: Any) -> Any:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        self.release.wait(ANSWER_WITHIN * 3)
        try:
            return self.embed(images)
        finally:
            with self._lock:
                self.inside -= 1


def test_cheap_requests_answer_while_uploads_wait_for_the_model(
    make_client: Callable[..., TestClient],
    indexed: IndexedLibrary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(indexed)
    state = client.app.state.picmatch  # type: ignore[attr-defined]
    assert isinstance(state, ServerState)
    embedder = state.library.embedder
    paused = PausedModel(embedder.embed_images)
    monkeypatch.setattr(embedder, "embed_images", paused)
    query = indexed.photos["rocket"].read_bytes()
    coffee = str(record_id(indexed.path("coffee")))

    def cheap_requests() -> list[int]:
        return [
            client.get("/api/health").status_code,
            client.post("/api/search", json={"id": coffee, "k": 3}).status_code,
            client.get(f"/api/images/{coffee}/thumbnail?size=128").status_code,
            client.get("/api/library").status_code,
        ]

    with ThreadPoolExecutor(UPLOADS + 1) as pool:
        uploads = [pool.submit(upload, client, query, k=1) for _ in range(UPLOADS)]
        try:
            assert paused.entered.wait(30), "no upload reached the model"
            answers = pool.submit(cheap_requests).result(timeout=ANSWER_WITHIN)
        finally:
            paused.release.set()
        assert answers == [200, 200, 200, 200]
        assert all(u.result(timeout=120).status_code == 200 for u in uploads)
    assert 1 <= paused.most_inside <= available_cpus()
