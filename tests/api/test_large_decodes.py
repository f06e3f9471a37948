"""Large images are decoded one at a time across uploads, thumbnails and heat maps, so parallel
requests for images near the pixel cap do not multiply the server's peak memory."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import picmatch.images.decode as decode_module
from picmatch.indexer import record_id
from tests.api.conftest import IndexedLibrary, upload

pytestmark = pytest.mark.model

CAP = 4_000_000  # a low pixel cap, so "near the cap" stays cheap in a test
SIDE = 1990  # 3.96 megapixels


def near_cap_png(seed: int) -> bytes:
    """A gradient with a seeded tint: under the cap, a small file."""
    ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
    pixels = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.tile(ramp, (SIDE, 1)), np.full((SIDE, SIDE), seed * 40)],
        axis=-1,
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


class DecodeSpy:
    """Wraps the real decoder; records how many decodes of large images ran at once."""

    def __init__(self, decode: Callable[..., Any]) -> None:
        self.decode = decode
        self.inside = 0
        self.most_inside = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, source: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.inside += 1
            self.calls += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            time.sleep(0.3)  # widen the window in which overlapping decodes would be seen
            return self.decode(source, **kwargs)
        finally:
            with self._lock:
                self.inside -= 1


def test_near_cap_uploads_and_thumbnails_decode_one_at_a_time(
    make_client: Callable[..., TestClient],
    library_copy: IndexedLibrary,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = [library_copy.root / f"big-{i}.png" for i in range(3)]
    for i, path in enumerate(big):
        path.write_bytes(near_cap_png(i))
    client = make_client(library_copy, max_pixels=CAP)
    client.app.state.picmatch.library.index([library_copy.root])  # type: ignore[attr-defined]
    spy = DecodeSpy(decode_module._decode_rgb)
    monkeypatch.setattr(decode_module, "_decode_rgb", spy)
    queries = [near_cap_png(i + 3) for i in range(4)]

    def thumbnail(path: Path) -> int:
        url = f"/api/images/{record_id(str(path))}/thumbnail?size=512"
        return client.get(url).status_code

    def explain(query: bytes) -> int:
        url = f"/api/explain?b={record_id(str(big[0]))}"
        return client.post(url, files={"image": ("q.png", query, "image/png")}).status_code

    with ThreadPoolExecutor(10) as pool:
        uploads = [pool.submit(upload, client, q, k=1) for q in queries]
        thumbnails = [pool.submit(thumbnail, p) for p in big]
        heat_maps = [pool.submit(explain, q) for q in queries[:2]]
        assert [u.result(timeout=120).status_code for u in uploads] == [200] * 4
        assert [t.result(timeout=120) for t in thumbnails] == [200] * 3
        assert [h.result(timeout=120) for h in heat_maps] == [200] * 2
    assert spy.calls == 4 + 3 + 2 * 2
    assert spy.most_inside == 1
