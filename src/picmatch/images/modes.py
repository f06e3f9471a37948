"""Any Pillow colour mode to RGB, and a bounded-memory reduction of very large images.

Converting a whole 179-megapixel grey PNG to RGB allocates 716 MB (Pillow stores RGB in 4 bytes
a pixel) on top of the 179 MB it decoded to, and alpha compositing allocates two more full-size
images. When the caller only needs a small image (a model input, a thumbnail), `bounded_rgb`
converts and box-reduces a strip of rows at a time instead, so the decoded image itself is the
only full-size buffer: see benchmarks/decode_memory.py for the peak memory it saves.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from picmatch.errors import ImageDecodeError

WHITE: Final = (255, 255, 255)

REDUCING_GAP: Final = 3
"""Reduce to no less than this many times the requested side (the resize that follows is
Lanczos with the same ``reducing_gap``, so it sees the same oversampling it always did)."""

STRIP_MIN_PIXELS: Final = 16_000_000
"""Images up to this size are converted whole (at most 64 MB more); larger ones in strips."""

_STRIP_PIXELS: Final = 1 << 22  # about 4 MP of source pixels per strip


def bounded_rgb(img: Image.Image, min_side: int | None, label: str) -> Image.Image:
    """`img` (decoded) in RGB; reduced by an integer factor when `min_side` allows.

    With `min_side`, a large image comes back box-reduced so that its short side stays at least
    ``REDUCING_GAP * min_side``, built one strip of rows at a time. Float (F) images are scaled
    by their global range, so they are always converted whole.
    """
    factor = 1 if min_side is None else reduce_factor(img.size, min_side)
    if factor > 1 and img.width * img.height > STRIP_MIN_PIXELS and img.mode != "F":
        return reduced_rgb(img, factor, label)
    return to_rgb(img, label)


def reduce_factor(size: tuple[int, int], min_side: int) -> int:
    """The largest integer reduction that keeps the short side >= ``REDUCING_GAP * min_side``."""
    return max(1, min(size) // (max(1, min_side) * REDUCING_GAP))


def reduced_rgb(img: Image.Image, factor: int, label: str) -> Image.Image:
    """``to_rgb(img).reduce(factor)``, computed a strip of rows at a time.

    Strips start at multiples of `factor`, so every output pixel averages the same source block
    as a whole-image reduction would (edge blocks included).
    """
    if img.mode in ("L", "RGB") and "transparency" not in img.info:
        return to_rgb(img.reduce(factor), label)  # no conversion needed: reduce in place
    width, height = img.size
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = max(1, _STRIP_PIXELS // (width * factor)) * factor
    for top in range(0, height, rows):
        strip = img.crop((0, top, width, min(height, top + rows)))
        out.paste(to_rgb(strip, label).reduce(factor), (0, top // factor))
    return out


def to_rgb(img: Image.Image, label: str) -> Image.Image:
    """Any Pillow mode to RGB: alpha over white, 16-bit and float samples scaled, not clipped."""
    mode = img.mode
    try:
        if mode == "RGB" and "transparency" not in img.info:
            return img
        if mode in ("I", "F") or mode.startswith("I;16"):
            return Image.fromarray(_deep_to_uint8(img)).convert("RGB")
        if img.has_transparency_data:
            return _on_white(img)
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageDecodeError(label, f"unsupported colour mode {mode}") from exc


def _on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, WHITE)
    canvas.paste(rgba, (0, 0), rgba)
    return canvas


def _deep_to_uint8(img: Image.Image) -> npt.NDArray[np.uint8]:
    """Grey samples deeper than 8 bits to 0..255.

    16-bit (I;16*) and 32-bit integer (I) samples are read as 0..65535 and scaled by 1/257, so
    65535 becomes 255. Float (F) samples in 0..1 are scaled by 255, samples in 0..255 kept, and
    any other range stretched to 0..255.
    """
    samples = np.asarray(img)
    if img.mode == "F":
        return _float_to_uint8(samples.astype(np.float64))
    wide = np.clip(samples.astype(np.int64), 0, 65535)
    return ((wide + 128) // 257).astype(np.uint8)


def _float_to_uint8(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    finite = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if low >= 0.0 and high <= 1.0:
        scaled = finite * 255.0
    elif low >= 0.0 and high <= 255.0:
        scaled = finite
    else:
        scaled = (finite - low) * (255.0 / (high - low))
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
