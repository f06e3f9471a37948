"""Every kind of bad file uploaded to POST /api/search gets a 4xx with a message, never a 500."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from tests.api.conftest import upload

pytestmark = pytest.mark.model

HUGE = 60_000  # a side far over the pixel cap


def _encoded(fmt: str, size: tuple[int, int] = (64, 48), **options: object) -> bytes:
    buffer = io.BytesIO()
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encoded("PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encoded("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encoded("GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encoded("BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _png_with_text_bomb() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * 50_000_000, zip=True)  # ~50 KB compressed, 50 MB inflated
    return _encoded("PNG", pnginfo=info)


def _truncated(fmt: str) -> Callable[[], bytes]:
    def make() -> bytes:
        whole = _encoded(fmt, (256, 192))
        return whole[: len(whole) // 2]

    return make


BAD_FILES: dict[str, Callable[[], bytes]] = {
    "random bytes": lambda: bytes(range(256)) * 40,
    "html": lambda: b"<!doctype html><html><body><img src=x></body></html>",
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "eps": lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "pdf": lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
    "only a JPEG start marker": lambda: b"\xff\xd8\xff",
    "only a PNG signature": lambda: b"\x89PNG\r\n\x1a\n",
    "truncated JPEG": _truncated("JPEG"),
    "truncated PNG": _truncated("PNG"),
    "truncated WebP": _truncated("WEBP"),
    "truncated GIF": _truncated("GIF"),
    "truncated TIFF": _truncated("TIFF"),
    "truncated BMP": _truncated("BMP"),
    "PNG with a broken CRC": lambda: _encoded("PNG")[:29] + b"\0\0\0\0" + _encoded("PNG")[33:],
    "PNG bomb": lambda: _png_declaring(HUGE, HUGE),
    "JPEG bomb": lambda: _jpeg_declaring(HUGE, HUGE),
    "GIF bomb": lambda: _gif_declaring(65_535, 65_535),
    "BMP bomb": lambda: _bmp_declaring(HUGE, HUGE),
    "PNG zero-sized": lambda: _png_declaring(0, 0),
    "PNG text bomb": _png_with_text_bomb,
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_upload_is_a_4xx_with_a_message(client: TestClient, kind: str) -> None:
    response = upload(client, BAD_FILES[kind]())
    assert 400 <= response.status_code < 500, (kind, response.status_code, response.text)
    message = response.json()["error"]
    assert "upload" in message or "image" in message, message
