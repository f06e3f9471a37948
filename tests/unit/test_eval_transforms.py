"""The protocol's edits: RGB out, deterministic per seed, right geometry, any size."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from picmatch.eval.transforms import EDIT_NAMES, TRANSFORMS, edit_rng, sticker

PROTOCOL_ORDER = [
    "crop90",
    "crop70",
    "crop50",
    "crop30",
    "resize_small",
    "aspect",
    "jpeg50",
    "jpeg30",
    "jpeg10",
    "rotate",
    "color_jitter",
    "grayscale",
    "blur",
    "text",
    "sticker",
    "hflip",
    "combo",
]


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth colourful picture with some texture, so every edit changes pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    red = 128 + 100 * np.sin(x / max(1, width) * 6.0)
    green = 128 + 100 * np.cos(y / max(1, height) * 5.0)
    blue = rng.integers(0, 256, size=(height, width))
    pixels = np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_registry_has_the_17_protocol_edits_in_order() -> None:
    assert list(TRANSFORMS) == PROTOCOL_ORDER
    assert tuple(PROTOCOL_ORDER) == EDIT_NAMES


@pytest.mark.parametrize("name", PROTOCOL_ORDER)
@pytest.mark.parametrize("size", [(160, 100), (20, 20), (1, 1), (200, 3)])
def test_edit_returns_rgb_on_any_size(name: str, size: tuple[int, int]) -> None:
    out = TRANSFORMS[name](_photo(*size), random.Random(7))
    assert out.mode == "RGB"
    assert out.width >= 1 and out.height >= 1


@pytest.mark.parametrize("name", PROTOCOL_ORDER)
def test_edit_is_deterministic_for_a_seed_and_leaves_input_alone(name: str) -> None:
    image = _photo(120, 90)
    before = np.asarray(image).copy()
    first = TRANSFORMS[name](image, edit_rng(3, "photo", name))
    second = TRANSFORMS[name](image, edit_rng(3, "photo", name))
    assert _same(first, second)
    assert np.array_equal(np.asarray(image), before)


@pytest.mark.parametrize("name", PROTOCOL_ORDER)
def test_edit_changes_the_image(name: str) -> None:
    image = _photo(120, 90)
    assert not _same(TRANSFORMS[name](image, random.Random(1)), image)


@pytest.mark.parametrize("name", ["crop90", "crop70", "aspect", "rotate", "text", "sticker"])
def test_random_edits_depend_on_the_seed(name: str) -> None:
    image = _photo(200, 150)
    outputs = [TRANSFORMS[name](image, random.Random(seed)) for seed in range(4)]
    assert not all(_same(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize(
    ("name", "share"), [("crop90", 0.9), ("crop70", 0.7), ("crop50", 0.5), ("crop30", 0.3)]
)
def test_crop_keeps_the_area_share_and_aspect(name: str, share: float) -> None:
    image = _photo(400, 300)
    out = TRANSFORMS[name](image, random.Random(5))
    assert out.width * out.height / (400 * 300) == pytest.approx(share, abs=0.01)
    assert out.width / out.height == pytest.approx(400 / 300, rel=0.02)


def test_crop_is_a_true_sub_image() -> None:
    image = _photo(64, 48)
    out = np.asarray(TRANSFORMS["crop50"](image, random.Random(2)))
    full = np.asarray(image)
    h, w = out.shape[:2]
    found = any(
        np.array_equal(full[y : y + h, x : x + w], out)
        for y in range(48 - h + 1)
        for x in range(64 - w + 1)
    )
    assert found


def test_resize_small_is_a_quarter_of_each_side() -> None:
    assert TRANSFORMS["resize_small"](_photo(400, 200), random.Random(0)).size == (100, 50)


def test_aspect_changes_one_side_by_1_5_to_2() -> None:
    for seed in range(8):
        width, height = TRANSFORMS["aspect"](_photo(200, 100), random.Random(seed)).size
        ratio = (width / height) / 2.0
        assert 1.49 <= max(ratio, 1 / ratio) <= 2.01
        assert width == 200 or height == 100


def test_rotate_leaves_no_fill_corners() -> None:
    white = Image.new("RGB", (300, 200), "white")
    for seed in range(6):
        out = np.asarray(TRANSFORMS["rotate"](white, random.Random(seed)))
        assert out.min() >= 250, "black fill from the rotation is visible"
        assert out.shape[1] >= 0.75 * 300


def test_grayscale_is_rgb_with_equal_channels() -> None:
    out = np.asarray(TRANSFORMS["grayscale"](_photo(30, 20), random.Random(0)))
    assert out.shape == (20, 30, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_hflip_mirrors() -> None:
    image = _photo(30, 20)
    out = TRANSFORMS["hflip"](image, random.Random(0))
    assert np.array_equal(np.asarray(out), np.asarray(image)[:, ::-1])


def test_jpeg_quality_orders_the_error() -> None:
    image = _photo(128, 96)
    errors = [
        np.abs(
            np.asarray(TRANSFORMS[name](image, random.Random(0)), float) - np.asarray(image)
        ).mean()
        for name in ("jpeg50", "jpeg30", "jpeg10")
    ]
    assert errors[0] < errors[1] < errors[2]


def test_sticker_covers_about_10_to_20_percent() -> None:
    image = Image.new("RGB", (400, 300), (0, 0, 0))
    for seed in range(10):
        out = np.asarray(sticker(image, random.Random(seed)))
        covered = (out.max(axis=-1) > 0).mean()
        assert 0.07 <= covered <= 0.22


def test_text_draws_a_full_width_band() -> None:
    image = Image.new("RGB", (300, 200), "white")
    out = np.asarray(TRANSFORMS["text"](image, random.Random(4)))
    band_rows = (out[:, :5, 0] < 150).all(axis=1) & (out[:, -5:, 0] < 150).all(axis=1)
    assert 0.14 <= band_rows.mean() <= 0.26
    assert (out[band_rows] > 200).any(), "the caption is missing from the band"


def test_non_rgb_input_is_accepted() -> None:
    rgba = _photo(40, 30).convert("RGBA")
    for name in PROTOCOL_ORDER:
        assert TRANSFORMS[name](rgba, random.Random(0)).mode == "RGB"
    gray = _photo(40, 30).convert("L")
    assert TRANSFORMS["color_jitter"](gray, random.Random(0)).mode == "RGB"


def test_edit_rng_is_stable_and_keyed() -> None:
    assert edit_rng(1, "a", "crop90").random() == edit_rng(1, "a", "crop90").random()
    assert edit_rng(1, "a", "crop90").random() != edit_rng(1, "b", "crop90").random()
    assert edit_rng(1, "a", "crop90").random() != edit_rng(2, "a", "crop90").random()
