"""JPEG thumbnails, made on first request and cached in `<library>/thumbnails/`.

A thumbnail's name holds the image id, the content hash and the size, so an image whose bytes
changed (and was re-indexed) gets a fresh thumbnail, and the ETag never outlives the content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PIL import Image

from picmatch._sys import atomic_writer
from picmatch.images.decode import decode_image
from picmatch.server.decode_gate import DecodeGate
from picmatch.thumbnail_files import thumbnail_path

THUMBNAIL_SIZES: Final = (128, 256, 512)
DEFAULT_THUMBNAIL_SIZE: Final = 256
JPEG_QUALITY: Final = 82


def thumbnail_etag(content_hash: str, size: int) -> str:
    return f'"{content_hash[:24]}-{size}"'


class ThumbnailCache:
    """Thumbnails of indexed images, keyed by id + content hash + size."""

    def __init__(self, folder: Path, *, max_pixels: int, gate: DecodeGate | None = None) -> None:
        self.folder = folder
        self.max_pixels = max_pixels
        self.gate = gate or DecodeGate.for_cap(max_pixels)

    def path_for(self, image_id: int, content_hash: str, size: int) -> Path:
        return thumbnail_path(self.folder, image_id, content_hash, size)

    def get(self, source: Path, image_id: int, content_hash: str, size: int) -> Path:
        """The cached thumbnail of `source`, rendered first if needed. Blocking."""
        target = self.path_for(image_id, content_hash, size)
        if not target.is_file():
            self._render(source, target, size)
        return target

    def _render(self, source: Path, target: Path, size: int) -> None:
        with self.gate.admit(source):
            decoded = decode_image(source, max_pixels=self.max_pixels, min_side=size)
            image = Image.fromarray(decoded.pixels)
            del decoded
            image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        # Concurrent requests never see half a file.
        with atomic_writer(target) as f:
            image.save(f, "JPEG", quality=JPEG_QUALITY, optimize=True)
