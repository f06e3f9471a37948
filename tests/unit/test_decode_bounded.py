"""Large images decode for the model with bounded memory, and to the same pixels as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picmatch.images import modes
from picmatch.images.decode import DEFAULT_MAX_PIXELS, _decode_rgb, fit_to_input, load_for_model
from picmatch.images.modes import reduced_rgb, to_rgb
from picmatch.models.base import Preprocess
from tests.imagegen import synthetic

PRE = Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _odd_mode(mode: str, size: tuple[int, int], seed: int = 3) -> Image.Image:
    rgb = synthetic(seed, size)
    if mode == "P+trns":
        img = rgb.quantize(64)
        img.info["transparency"] = 5
        return img
    if mode == "RGBA":
        img = rgb.convert("RGBA")
        img.putalpha(synthetic(seed + 1, size).convert("L"))
        return img
    if mode == "I;16":
        return Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    return rgb.convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "P+trns", "RGBA", "LA", "CMYK", "1", "I;16"])
def test_strips_give_exactly_the_whole_image_reduction(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = _odd_mode(mode, (333, 251))
    monkeypatch.setattr(modes, "_STRIP_PIXELS", 333 * 8)  # many strips, the last one partial
    expected = np.asarray(to_rgb(img, "x").reduce(3))
    assert np.array_equal(np.asarray(reduced_rgb(img, 3, "x")), expected)


@pytest.mark.parametrize("mode", ["L", "RGB", "P+trns", "RGBA"])
def test_a_large_image_gives_the_model_nearly_the_same_pixels(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "large.png"
    _odd_mode(mode, (4100, 4000)).save(path, compress_level=1)  # above the strip threshold
    whole = fit_to_input(_decode_rgb(path, max_pixels=DEFAULT_MAX_PIXELS, min_side=None).image, PRE)
    bounded = load_for_model(path, PRE)
    assert (bounded.width, bounded.height) == (4100, 4000)
    diff = np.abs(bounded.pixels.astype(np.int16) - whole.astype(np.int16))
    assert diff.mean() < 0.5 and diff.max() <= 8


_PEAK = """
import json, resource, sys
from picmatch.images.decode import load_for_model
from picmatch.models.base import Preprocess
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
load_for_model(sys.argv[1], Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024))
"""


@pytest.mark.parametrize("mode", ["L", "P+trns"])
def test_decoding_a_large_flat_png_costs_little_more_than_its_pixels(
    tmp_path: Path, mode: str
) -> None:
    """A 64 MP grey PNG of a few hundred KB: 64 MB of samples to decode, once. The whole-image
    path converted it to RGB (+256 MB; +512 MB more with transparency) before resizing."""
    side = 8000
    img = Image.new("L" if mode == "L" else "P", (side, side), 40)
    img.paste(200, (1000, 1000, 5000, 3000))
    if mode != "L":
        img.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
        img.info["transparency"] = 40
    path = tmp_path / "flat.png"
    img.save(path)
    del img
    run = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    extra = json.loads(run.stdout)
    assert extra < 64e6 + 96e6, f"decoding took {extra / 1e6:.0f} MB above the base"
