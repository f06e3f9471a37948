"""One large decode at a time: uploads and thumbnails of big images take turns.

Decoding costs memory in proportion to the pixels: an image just under the default pixel cap
(179 megapixels) needs several hundred MB while it is decoded, however small its file is. Each
request is bounded by the cap, but N of them at once would need N times that. So every decode
of an image above `large_pixels` (read from the header, before any pixel is decoded) waits for
one of a few slots; small images, the usual case, never wait. After a large decode the freed
memory is handed back to the system (glibc keeps it per thread otherwise, so the next large
decode, in another thread, would add to the peak instead of reusing it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from picmatch.errors import PicmatchError
from picmatch.images.decode import image_size

LARGE_DECODE_PIXELS = 40_000_000  # 120 MB of RGB pixels; 4x a 10-megapixel photo
LARGE_DECODE_SLOTS = 1


class DecodeGate:
    def __init__(self, large_pixels: int, slots: int = LARGE_DECODE_SLOTS) -> None:
        self.large_pixels = large_pixels
        self._slots = threading.BoundedSemaphore(slots)

    @classmethod
    def for_cap(cls, max_pixels: int) -> DecodeGate:
        """Images over a quarter of the pixel cap (at most LARGE_DECODE_PIXELS) count as large."""
        return cls(min(LARGE_DECODE_PIXELS, max(1, max_pixels // 4)))

    @contextmanager
    def admit(self, source: bytes | Path) -> Iterator[None]:
        """Hold a slot while decoding `source`, if it is large. Blocking (worker threads)."""
        if not self.is_large(source):
            yield
            return
        with self._slots:
            try:
                yield
            finally:
                release_free_memory()

    def is_large(self, source: bytes | Path) -> bool:
        try:
            width, height = image_size(source)
        except (PicmatchError, OSError):
            return False  # the decode itself reports what is wrong
        return width * height > self.large_pixels


def release_free_memory() -> None:
    """Return freed heap memory to the system, where the C library can (glibc's malloc_trim)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # musl and others: nothing to trim
    return trim
