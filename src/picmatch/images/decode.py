"""Safe, fast decoding: an image file (or its bytes) in, oriented RGB pixels out.

Indexing and querying both go through `load_for_model`, so an image is preprocessed the same way
on either side of a search.

Safety: the pixel count is checked from the header before any pixel is decoded; Pillow's own
bomb guard becomes `ImageTooLargeError`; only the raster formats picmatch indexes are tried (never
EPS, which runs Ghostscript); truncated files are errors (``LOAD_TRUNCATED_IMAGES`` is left alone);
every failure is an `ImageDecodeError` with a short, stable reason.

Speed: given a minimum side, JPEGs are decoded with DCT scaling (Pillow's draft mode) and HEICs
from an embedded thumbnail where one is large enough, so a 12 MP photo for a 224-pixel model is
never decoded at full size. Measured here (2 cores), 4000x3000 JPEG to a 224x224 input: 25-40 ms
drafted, 130 ms by full decode and resize (0.5 grey levels mean difference); a 12 MP HEIC with a
320x240 thumbnail: 35 ms instead of 0.7-1.2 s. Resizing is Lanczos with ``reducing_gap=3`` (an
integer box-reduce first): a full 3000x3000 crop to 224 takes 20 ms instead of 118 ms with plain
Lanczos (83 ms bicubic), 0.2 grey levels from it; a drafted 500x375 image takes 2.5 ms.

Memory: given a minimum side, an image above 16 MP that no draft could shrink is converted to RGB
and box-reduced a strip at a time (`images.modes.bounded_rgb`), so its decoded samples are the
only full-size buffer: 1 byte a pixel for grey and palette images, 4 for RGB(A) and CMYK, at most
716 MB under the default cap. A 13377^2 grey PNG (196 KB) peaks at 225 MB instead of 939 MB.
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO, Final, NamedTuple

from PIL import ExifTags, Image, ImageFile, PngImagePlugin, UnidentifiedImageError, features

from picmatch.errors import ImageDecodeError, ImageTooLargeError
from picmatch.images.files import open_regular, os_error_reason
from picmatch.images.fit import Preprocess, RGBImage, fit_to_input, to_array
from picmatch.images.modes import bounded_rgb

DEFAULT_MAX_PIXELS: Final = 178_956_970
"""Largest image (width x height of the stored image) decoded by default: about 179 MP, twice
Pillow's decompression-bomb warning threshold and equal to the point where Pillow itself refuses
(``2 * Image.MAX_IMAGE_PIXELS``). A full RGB decode that large needs about 540 MB. Pillow's own
refusal stays in force, so a cap above it also needs ``PIL.Image.MAX_IMAGE_PIXELS`` raised."""

ImageSource = str | os.PathLike[str] | bytes | BinaryIO


# Formats picmatch reads; the names are Pillow's. MPO is how Pillow opens many camera JPEGs.
_WANTED_FORMATS: Final = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "HEIF", "AVIF")

_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES: Final = frozenset({5, 6, 7, 8})

_ORIENTATION: Final = 0x0112
_DATETIME: Final = 0x0132
_DATETIME_ORIGINAL: Final = 0x9003
_OFFSET_TIME: Final = 0x9010
_OFFSET_TIME_ORIGINAL: Final = 0x9011
_EXIF_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_CORRUPT_REASON: Final = "truncated or corrupt image data"

# What Pillow and its plugins raise on damaged data (OSError is told apart by its errno).
_PARSE_ERRORS: Final = (SyntaxError, ValueError, EOFError, struct.error, LookupError, TypeError)
_CORRUPT_DATA: Final = (*_PARSE_ERRORS, ArithmeticError, RuntimeError)
_EXIF_ERRORS: Final = (*_CORRUPT_DATA, OSError)


@dataclass(frozen=True)
class DecodedImage:
    """Pixels of one image plus the facts the store keeps about it.

    `pixels` is H x W x 3 uint8, C-contiguous and read-only. `width` and `height` are the size of
    the original image after EXIF orientation, whatever size `pixels` was decoded or resized to.
    `taken_at` is the EXIF capture time in epoch seconds (local time read as UTC unless the file
    records its UTC offset), or None.
    """

    pixels: RGBImage
    width: int
    height: int
    taken_at: float | None


class _Decoded(NamedTuple):
    image: Image.Image  # RGB, EXIF-oriented
    width: int
    height: int
    taken_at: float | None


def decode_image(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int | None = None
) -> DecodedImage:
    """Decode `source` to oriented RGB pixels; alpha is composited on white.

    With `min_side`, the decoder may return a smaller image whose short side is still at least
    `min_side` (JPEG DCT scaling, HEIC thumbnails); otherwise the full image is decoded.
    Raises `ImageTooLargeError` above `max_pixels` and `ImageDecodeError` for anything unreadable.
    """
    decoded = _decode_rgb(source, max_pixels=max_pixels, min_side=min_side)
    return DecodedImage(to_array(decoded.image), decoded.width, decoded.height, decoded.taken_at)


def load_for_model(
    source: ImageSource, preprocess: Preprocess, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> DecodedImage:
    """Decode `source` straight to a model's square input (`preprocess.size`, `preprocess.resize`).

    The one path both indexing workers and queries take, so both see identical pixels.
    """
    decoded = _decode_rgb(source, max_pixels=max_pixels, min_side=preprocess.size)
    pixels = fit_to_input(decoded.image, preprocess)
    return DecodedImage(pixels, decoded.width, decoded.height, decoded.taken_at)


def image_size(source: ImageSource) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header alone (no pixels decoded).

    A PNG whose EXIF block follows its pixel data is reported unrotated (reading it means decoding).
    """
    label = _label(source)
    with _translated_errors(label, source), _open(source) as img:
        width, height = img.size
        cheap = not (isinstance(img, PngImagePlugin.PngImageFile) and "exif" not in img.info)
        orientation = _orientation(_read_exif(img)) if cheap else 1
    return (height, width) if orientation in _SWAPS_SIDES else (width, height)


def _decode_rgb(source: ImageSource, *, max_pixels: int, min_side: int | None) -> _Decoded:
    label = _label(source)
    with _translated_errors(label, source), _open(source) as img:
        width, height = img.size
        _check_pixels(label, width * height, max_pixels)
        if min_side is not None:
            # The request is square, so it keeps the short side >= min_side in any orientation.
            img.draft("RGB", (max(1, min_side), max(1, min_side)))
        img.load()
        exif = _read_exif(img)
        orientation = _orientation(exif)
        rgb = bounded_rgb(img, min_side, label)
    method = _TRANSPOSE.get(orientation)
    if method is not None:
        rgb = rgb.transpose(method)
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return _Decoded(rgb, width, height, _taken_at(exif))


@contextmanager
def _open(source: ImageSource) -> Iterator[ImageFile.ImageFile]:
    """Open an image; a path is opened with `open_regular` (no FIFO or device is read)."""
    if isinstance(source, str | os.PathLike):
        with open_regular(source) as file, Image.open(file, formats=_allowed_formats()) as img:
            yield img
        return
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(fp, formats=_allowed_formats()) as img:
        yield img


@contextmanager
def _translated_errors(label: str, source: ImageSource) -> Iterator[None]:
    """Turn whatever opening and decoding raise into `ImageDecodeError` with a stable reason."""
    try:
        with warnings.catch_warnings():
            # picmatch enforces its own cap; the warning is noise (or a crash under -W error).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(label, _bomb_reason(str(exc))) from exc
    except UnidentifiedImageError as exc:
        reason = "file is empty" if _is_empty(source) else "not an image or unsupported format"
        raise ImageDecodeError(label, reason) from exc
    except MemoryError as exc:
        raise ImageDecodeError(label, "not enough memory to decode") from exc
    except OSError as exc:
        # An errno means the file system failed; Pillow's own OSErrors mean damaged data.
        reason = os_error_reason(exc) if exc.errno is not None else _CORRUPT_REASON
        raise ImageDecodeError(label, reason) from exc
    except _CORRUPT_DATA as exc:
        raise ImageDecodeError(label, _CORRUPT_REASON) from exc


@functools.cache
def _allowed_formats() -> tuple[str, ...]:
    """Register the HEIF/AVIF plugins once (tolerating their absence) and list usable formats."""
    try:
        import pillow_heif
    except ImportError:
        pass
    else:
        pillow_heif.register_heif_opener()
        if not features.check("avif") and hasattr(pillow_heif, "register_avif_opener"):
            pillow_heif.register_avif_opener()
    Image.init()
    return tuple(name for name in _WANTED_FORMATS if name in Image.OPEN)


def _check_pixels(label: str, pixels: int, max_pixels: int) -> None:
    if pixels > max_pixels:
        raise ImageTooLargeError(label, _too_large(pixels, max_pixels))


def _bomb_reason(message: str) -> str:
    """Pillow refused the image itself (above ``2 * Image.MAX_IMAGE_PIXELS``)."""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    match = _BOMB_PIXELS.search(message)
    return _too_large(int(match.group(1)) if match else limit + 1, limit)


def _too_large(pixels: int, limit: int) -> str:
    return f"image has {pixels / 1e6:.1f} megapixels, above the limit of {limit / 1e6:.1f}"


def _label(source: ImageSource) -> str:
    if isinstance(source, bytes):
        return "<bytes>"
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _is_empty(source: ImageSource) -> bool:
    if isinstance(source, bytes):
        return not source
    try:
        if isinstance(source, str | os.PathLike):
            return os.stat(source).st_size == 0
        return os.fstat(source.fileno()).st_size == 0
    except (OSError, ValueError):  # no file behind the stream
        return False


def _read_exif(img: Image.Image) -> Image.Exif:
    try:
        return img.getexif()
    except _EXIF_ERRORS:
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(_ORIENTATION, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _taken_at(exif: Image.Exif) -> float | None:
    try:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
    except _EXIF_ERRORS:
        sub = {}
    original = _parse_exif_time(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL))
    if original is not None:
        return original
    return _parse_exif_time(exif.get(_DATETIME), sub.get(_OFFSET_TIME))


def _parse_exif_time(value: object, offset: object) -> float | None:
    match = _EXIF_DATE.match(_exif_text(value))
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # 0000:00:00 and other impossible dates
        return None
    return moment.replace(tzinfo=_parse_offset(_exif_text(offset))).timestamp()


def _parse_offset(text: str) -> timezone:
    match = _EXIF_OFFSET.match(text)
    if match is None or int(match.group(2)) > 23 or int(match.group(3)) > 59:
        return UTC
    delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return timezone(-delta if match.group(1) == "-" else delta)


def _exif_text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""
