"""Decoding: every mode and format to oriented RGB, safe failures, and the model input."""

from __future__ import annotations

import io
import os
import pickle
import resource
import struct
import warnings
import zlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, features
from skimage import data

from picmatch.errors import ImageDecodeError, ImageTooLargeError
from picmatch.images.decode import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image,
    image_size,
    load_for_model,
)
from picmatch.images.fit import Preprocess, ResizeMode, fit_to_input

RED = (255, 0, 0)
BLUE = (0, 0, 255)
HALF = (0.5, 0.5, 0.5)


def preprocess(size: int = 224, mode: ResizeMode = ResizeMode.CENTER_CROP) -> Preprocess:
    return Preprocess(size=size, mean=HALF, std=HALF, resize=mode)


def red_left_half(width: int = 60, height: int = 40) -> Image.Image:
    img = Image.new("RGB", (width, height), BLUE)
    img.paste(RED, (0, 0, width // 2, height))
    return img


def exif_with(orientation: int | None = None, **exif_ifd: str) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    for name, value in exif_ifd.items():
        sub[getattr(ExifTags.Base, name)] = value
    return exif


def is_close(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tolerance))


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4000x3000 (12 MP) photo-like JPEG."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    photo = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.BILINEAR)
    photo.save(path, quality=90)
    return path


def stored(path: Path) -> tuple[str, int]:
    """The mode and frame count Pillow reads from a file."""
    with Image.open(path) as img:
        return img.mode, getattr(img, "n_frames", 1)


def write_blank_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit greyscale PNG, tiny on disk however many pixels it declares."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


# --- basic contract ----------------------------------------------------------------------------


def test_decodes_a_photo_to_contiguous_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(path, quality=95)
    decoded = decode_image(path)
    assert decoded.pixels.shape == (300, 451, 3)
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.flags.c_contiguous
    assert (decoded.width, decoded.height) == (451, 300)
    assert decoded.taken_at is None
    assert np.abs(decoded.pixels.astype(int) - data.chelsea()).mean() < 3


def test_path_str_bytes_and_stream_give_the_same_pixels(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(data.astronaut()).save(path)
    from_path = decode_image(path).pixels
    assert np.array_equal(decode_image(str(path)).pixels, from_path)
    assert np.array_equal(decode_image(path.read_bytes()).pixels, from_path)
    with path.open("rb") as stream:
        assert np.array_equal(decode_image(stream).pixels, from_path)


def test_default_cap_is_twice_pillows_warning_threshold() -> None:
    assert 2 * (Image.MAX_IMAGE_PIXELS or 0) == DEFAULT_MAX_PIXELS


# --- EXIF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "red_at", "size"),
    [
        (1, "left", (60, 40)),
        (3, "right", (60, 40)),  # rotated 180 degrees
        (6, "top", (40, 60)),  # camera turned clockwise: displayed rotated 90 degrees clockwise
        (8, "bottom", (40, 60)),  # displayed rotated 90 degrees counter-clockwise
    ],
)
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_orientation_is_applied(
    tmp_path: Path, orientation: int, red_at: str, size: tuple[int, int], suffix: str
) -> None:
    path = tmp_path / f"o{orientation}{suffix}"
    red_left_half().save(path, exif=exif_with(orientation), quality=95)
    decoded = decode_image(path)
    height, width = decoded.pixels.shape[:2]
    assert (width, height) == size == (decoded.width, decoded.height)
    assert image_size(path) == size
    probes = {
        "left": decoded.pixels[height // 2, 2],
        "right": decoded.pixels[height // 2, width - 3],
        "top": decoded.pixels[2, width // 2],
        "bottom": decoded.pixels[height - 3, width // 2],
    }
    assert is_close(probes[red_at], RED)
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[red_at]
    assert is_close(probes[opposite], BLUE)


def test_capture_time_comes_from_exif(tmp_path: Path) -> None:
    path = tmp_path / "t.jpg"
    red_left_half().save(path, exif=exif_with(DateTimeOriginal="2021:06:15 12:30:00"))
    assert decode_image(path).taken_at == datetime(2021, 6, 15, 12, 30, tzinfo=UTC).timestamp()


def test_capture_time_honours_the_recorded_utc_offset(tmp_path: Path) -> None:
    path = tmp_path / "t.jpg"
    exif = exif_with(DateTimeOriginal="2021:06:15 12:30:00", OffsetTimeOriginal="+02:00")
    red_left_half().save(path, exif=exif)
    assert decode_image(path).taken_at == datetime(2021, 6, 15, 10, 30, tzinfo=UTC).timestamp()


def test_capture_time_falls_back_to_datetime_and_ignores_junk(tmp_path: Path) -> None:
    fallback, junk = tmp_path / "f.jpg", tmp_path / "j.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "2020:01:02 03:04:05"
    red_left_half().save(fallback, exif=exif)
    red_left_half().save(junk, exif=exif_with(DateTimeOriginal="0000:00:00 00:00:00"))
    assert decode_image(fallback).taken_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert decode_image(junk).taken_at is None


# --- draft mode ------------------------------------------------------------------------------


def test_draft_mode_decodes_a_12mp_jpeg_small(big_jpeg: Path) -> None:
    decoded = decode_image(big_jpeg, min_side=224)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert 224 <= min(decoded.pixels.shape[:2]) < 448
    assert decoded.pixels.shape[:2] == (375, 500)  # DCT-scaled by 1/8


def test_draft_mode_keeps_the_short_side_when_rotated(tmp_path: Path) -> None:
    path = tmp_path / "r.jpg"
    red_left_half(2000, 1000).save(path, exif=exif_with(6))
    decoded = decode_image(path, min_side=300)
    assert (decoded.width, decoded.height) == (1000, 2000)
    assert decoded.pixels.shape[:2] == (1000, 500)  # halved, then turned portrait


def test_min_side_larger_than_the_image_decodes_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.jpg"
    red_left_half(60, 40).save(path)
    assert decode_image(path, min_side=1000).pixels.shape == (40, 60, 3)


# --- colour modes ----------------------------------------------------------------------------


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    img = Image.new("RGBA", (20, 10), (0, 0, 255, 255))
    img.paste((255, 0, 0, 0), (0, 0, 10, 10))  # fully transparent red
    img.paste((0, 0, 0, 128), (10, 0, 15, 10))  # half-transparent black
    img.save(path)
    pixels = decode_image(path).pixels
    assert is_close(pixels[5, 2], (255, 255, 255), 0)
    assert is_close(pixels[5, 12], (127, 127, 127), 1)
    assert is_close(pixels[5, 17], BLUE, 0)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_transparency_becomes_white(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"p{suffix}"
    img = Image.new("P", (10, 10), 0)
    img.putpalette([0, 255, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.paste(1, (5, 0, 10, 10))
    img.save(path, transparency=0)
    pixels = decode_image(path).pixels
    assert is_close(pixels[5, 2], (255, 255, 255), 0)
    assert is_close(pixels[5, 7], RED, 0)


def test_la_composites_on_white(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    img = Image.new("LA", (10, 10), (0, 255))
    img.paste((0, 0), (0, 0, 5, 10))
    img.save(path)
    pixels = decode_image(path).pixels
    assert is_close(pixels[5, 2], (255, 255, 255), 0)
    assert is_close(pixels[5, 7], (0, 0, 0), 0)


def test_cmyk_jpeg_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    assert is_close(decode_image(path).pixels[8, 8], RED)


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    samples = np.array([[0, 128 * 257, 65535, 1000]], dtype=np.uint16).repeat(4, axis=0)
    Image.fromarray(samples).save(path)
    assert stored(path)[0].startswith("I;16")
    pixels = decode_image(path).pixels
    assert pixels[0, :, 0].tolist() == [0, 128, 255, 4]
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_32_bit_integer_tiff_is_read_as_16_bit(tmp_path: Path) -> None:
    path = tmp_path / "int.tif"
    Image.fromarray(np.array([[0, 65535, 100000]], dtype=np.int32)).save(path)
    assert stored(path)[0] == "I"
    assert decode_image(path).pixels[0, :, 1].tolist() == [0, 255, 255]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # 0..1 floats
        ([0.0, 100.0, 255.0], [0, 100, 255]),  # 0..255 floats
        ([-5.0, 0.0, 5.0], [0, 128, 255]),  # anything else is stretched
    ],
)
def test_float_tiff_is_scaled(tmp_path: Path, samples: list[float], expected: list[int]) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([samples], dtype=np.float32)).save(path)
    assert stored(path)[0] == "F"
    assert decode_image(path).pixels[0, :, 0].tolist() == expected


def test_one_bit_image_is_black_and_white(tmp_path: Path) -> None:
    path = tmp_path / "bits.png"
    img = Image.new("1", (16, 4), 0)
    img.paste(1, (8, 0, 16, 4))
    img.save(path)
    pixels = decode_image(path).pixels
    assert pixels[0, 0].tolist() == [0, 0, 0]
    assert pixels[0, 12].tolist() == [255, 255, 255]


@pytest.mark.parametrize("mode", ["L", "YCbCr", "HSV", "LAB", "RGBa", "PA", "I;16B"])
def test_any_mode_fits_to_the_model_input(mode: str) -> None:
    pixels = fit_to_input(Image.new(mode, (40, 30)), preprocess(16))
    assert pixels.shape == (16, 16, 3)
    assert pixels.dtype == np.uint8


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_animations_give_their_first_frame(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"anim{suffix}"
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, (0, 255, 0), BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert stored(path)[1] == 3
    assert is_close(decode_image(path).pixels[8, 8], RED)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".webp"])
def test_other_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img{suffix}"
    red_left_half().save(path, lossless=True)
    pixels = decode_image(path).pixels
    assert is_close(pixels[20, 5], RED, 0)
    assert is_close(pixels[20, 55], BLUE, 0)


def test_heic_round_trip(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "photo.heic"
    pillow_heif.from_pillow(red_left_half(64, 48)).save(path, quality=95)
    decoded = decode_image(path)
    assert decoded.pixels.shape == (48, 64, 3)
    assert is_close(decoded.pixels[24, 8], RED, 20)
    assert is_close(decoded.pixels[24, 56], BLUE, 20)
    assert np.array_equal(decode_image(path.read_bytes()).pixels, decoded.pixels)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow build has no AVIF codec")
def test_avif_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "photo.avif"
    red_left_half(64, 48).save(path, quality=95)
    decoded = decode_image(path)
    assert decoded.pixels.shape == (48, 64, 3)
    assert is_close(decoded.pixels[24, 8], RED, 20)
    assert is_close(decoded.pixels[24, 56], BLUE, 20)


# --- failures ----------------------------------------------------------------------------------


def reason_for(source: str | Path | bytes, **kwargs: int) -> str:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(source, **kwargs)
    return caught.value.reason


def test_truncated_jpeg_is_an_error(tmp_path: Path, big_jpeg: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(big_jpeg.read_bytes()[: big_jpeg.stat().st_size // 2])
    assert reason_for(path) == "truncated or corrupt image data"
    assert reason_for(path, min_side=224) == "truncated or corrupt image data"


def test_corrupt_png_data_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    raw[200:400] = bytes(200)
    path.write_bytes(bytes(raw))
    assert reason_for(path) == "truncated or corrupt image data"


def test_empty_files_and_bytes_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert reason_for(path) == "file is empty"
    assert reason_for(b"") == "file is empty"


def test_non_images_are_errors(tmp_path: Path) -> None:
    text, noise = tmp_path / "notes.jpg", tmp_path / "noise.png"
    text.write_text("not a picture at all\n")
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert reason_for(text) == "not an image or unsupported format"
    assert reason_for(noise) == "not an image or unsupported format"


def test_eps_is_never_handed_to_ghostscript(tmp_path: Path) -> None:
    path = tmp_path / "trap.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert reason_for(path) == "not an image or unsupported format"


def test_missing_file_and_directory_are_errors(tmp_path: Path) -> None:
    assert reason_for(tmp_path / "gone.jpg") == "file not found"
    assert reason_for(tmp_path) == "is a directory"
    with pytest.raises(ImageDecodeError) as caught:
        image_size(tmp_path / "gone.jpg")
    assert caught.value.path == str(tmp_path / "gone.jpg")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.jpg"
    red_left_half().save(path)
    path.chmod(0)
    assert reason_for(path) == "permission denied"


def test_images_above_the_cap_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    red_left_half(200, 100).save(path)
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(path, max_pixels=19_999)
    assert "megapixels, above the limit of" in caught.value.reason
    assert decode_image(path, max_pixels=20_000).width == 200
    with pytest.raises(ImageTooLargeError):
        load_for_model(path, preprocess(), max_pixels=19_999)


def test_a_decompression_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    write_blank_png(path, 20_000, 20_000)  # 400 MP: would need 1.2 GB as RGB
    assert path.stat().st_size < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100
    assert caught.value.reason.startswith("image has 400.0 megapixels")


def test_pillows_bomb_warning_never_escapes(tmp_path: Path) -> None:
    path = tmp_path / "warn.png"
    write_blank_png(path, 10_000, 10_000)  # 100 MP: above Pillow's warning threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLargeError):
            decode_image(path, max_pixels=50_000_000)
        assert image_size(path) == (10_000, 10_000)


# --- the model input ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(ResizeMode))
@pytest.mark.parametrize("shape", [(200, 300), (300, 200), (7, 500), (224, 224), (10, 10)])
def test_fit_to_input_gives_the_square_input(mode: ResizeMode, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    for image in (array, Image.fromarray(array)):
        pixels = fit_to_input(image, preprocess(224, mode))
        assert pixels.shape == (224, 224, 3)
        assert pixels.dtype == np.uint8
        assert pixels.flags.c_contiguous


def thirds(width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height), RED)
    img.paste((0, 255, 0), (width // 3, 0, 2 * width // 3, height))
    img.paste(BLUE, (2 * width // 3, 0, width, height))
    return img


def test_center_crop_keeps_the_middle() -> None:
    pixels = fit_to_input(thirds(300, 100), preprocess(32, ResizeMode.CENTER_CROP))
    assert is_close(pixels[16, 2], (0, 255, 0), 2)  # edge columns blend with the neighbours
    assert is_close(pixels[16, 29], (0, 255, 0), 2)


def test_squash_keeps_everything() -> None:
    pixels = fit_to_input(thirds(300, 100), preprocess(30, ResizeMode.SQUASH))
    assert is_close(pixels[15, 0], RED, 2)
    assert is_close(pixels[15, 15], (0, 255, 0), 2)
    assert is_close(pixels[15, 29], BLUE, 2)


def test_pad_fills_with_the_mean_colour() -> None:
    pixels = fit_to_input(Image.new("RGB", (200, 100), RED), preprocess(32, ResizeMode.PAD))
    assert pixels[0, 16].tolist() == [128, 128, 128]
    assert pixels[31, 16].tolist() == [128, 128, 128]
    assert is_close(pixels[16, 0], RED, 0)
    clip = Preprocess(32, (0.481, 0.458, 0.408), (0.27, 0.26, 0.28), ResizeMode.PAD)
    assert fit_to_input(Image.new("RGB", (200, 100)), clip)[0, 0].tolist() == [123, 117, 104]


def test_fit_to_input_rejects_arrays_that_are_not_rgb() -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        fit_to_input(np.zeros((10, 10), np.uint8), preprocess())
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        fit_to_input(np.zeros((10, 10, 3), np.float32), preprocess())


def test_load_for_model_gives_the_input_and_the_original_size(big_jpeg: Path) -> None:
    decoded = load_for_model(big_jpeg, preprocess())
    assert decoded.pixels.shape == (224, 224, 3)
    assert (decoded.width, decoded.height) == (4000, 3000)
    full = fit_to_input(decode_image(big_jpeg).pixels, preprocess())
    assert np.abs(decoded.pixels.astype(int) - full).mean() < 2  # draft barely changes the input


def test_index_and_query_see_identical_pixels(big_jpeg: Path) -> None:
    indexed = load_for_model(str(big_jpeg), preprocess())
    queried = load_for_model(big_jpeg.read_bytes(), preprocess())
    assert np.array_equal(indexed.pixels, queried.pixels)


def test_results_and_arguments_pickle_for_worker_processes(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    red_left_half().save(path)
    decoded = load_for_model(str(path), preprocess(32))
    copy = pickle.loads(pickle.dumps(decoded))
    assert isinstance(copy, DecodedImage)
    assert np.array_equal(copy.pixels, decoded.pixels)
    assert pickle.loads(pickle.dumps(load_for_model)) is load_for_model
