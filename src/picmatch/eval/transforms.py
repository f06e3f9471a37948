"""The 17 edits of the evaluation protocol (``shared/eval/PROTOCOL.md``) as pure functions.

Every edit takes an image and a ``random.Random`` and returns a new RGB image; the input
is never modified. All random choices come from the generator passed in, so the same
image and the same generator state give the same output (use :func:`edit_rng` to derive
one generator per image and edit from a fixed seed). Inputs in another mode are first
converted with ``Image.convert("RGB")``. Every edit works on any size down to 1x1.

Choices made where the protocol leaves room:

* crops keep the stated share of the *area* with the original aspect ratio, at a uniformly
  random position;
* ``rotate`` turns by 5-10 degrees either way and then crops the largest centred rectangle
  with the original aspect ratio that lies inside the turned picture, so there are no
  fill corners; the output keeps about 77-92 % of each side, less for elongated images;
* ``aspect`` stretches or squeezes one side (chosen at random) by a factor of 1.5-2;
* ``color_jitter`` changes brightness, contrast and saturation by 20-40 % each (up or
  down) and turns the hue by 18-36 degrees either way;
* ``blur`` is a Gaussian blur with a radius of 0.3-0.5 % of the longer side (at least 0.5);
* ``text`` lays a dark band (15-25 % of the height, full width, 60-90 % opaque) with a
  white caption in Pillow's default font at a random height;
* ``sticker`` pastes a smiley or a star covering 10-20 % of the area (less on very
  elongated images, where the shape is capped by the short side), opaque or 60-85 % opaque.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Edit = Callable[[Image.Image, random.Random], Image.Image]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_RESAMPLE = Image.Resampling.BICUBIC
_CAPTIONS = (
    "WHEN YOU SEE IT",
    "Best day ever!",
    "#throwback",
    "Look at this view",
    "Monday mood",
    "SALE 50% OFF",
    "do not repost",
    "found this online",
)
_STICKER_COLOURS = ((255, 204, 0), (230, 57, 70), (69, 123, 157), (42, 157, 143), (255, 255, 255))
_STAR_AREA = 5 * 0.5 * math.sin(math.pi / 5)  # area of a 5-point star, inner radius R/2, per R²


def edit_rng(seed: int | str, *parts: str) -> random.Random:
    """A generator for one (seed, image, edit) combination, stable across runs and machines."""
    return random.Random(":".join([str(seed), *parts]))


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _signed(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high) * rng.choice((-1, 1))


# --- geometry -------------------------------------------------------------------------


def _crop_area(image: Image.Image, share: float, rng: random.Random) -> Image.Image:
    image = _rgb(image)
    width, height = image.size
    scale = math.sqrt(share)
    crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    return image.crop((left, top, left + crop_w, top + crop_h))


def crop90(image: Image.Image, rng: random.Random) -> Image.Image:
    """Keep 90 % of the area at a random position, same aspect ratio."""
    return _crop_area(image, 0.90, rng)


def crop70(image: Image.Image, rng: random.Random) -> Image.Image:
    """Keep 70 % of the area at a random position, same aspect ratio."""
    return _crop_area(image, 0.70, rng)


def crop50(image: Image.Image, rng: random.Random) -> Image.Image:
    """Keep 50 % of the area at a random position, same aspect ratio."""
    return _crop_area(image, 0.50, rng)


def crop30(image: Image.Image, rng: random.Random) -> Image.Image:
    """Keep 30 % of the area at a random position, same aspect ratio."""
    return _crop_area(image, 0.30, rng)


def resize_small(image: Image.Image, rng: random.Random) -> Image.Image:
    """Downscale to a quarter of each side (a thumbnail)."""
    width, height = image.size
    size = (max(1, round(width / 4)), max(1, round(height / 4)))
    return _rgb(image).resize(size, _RESAMPLE)


def aspect(image: Image.Image, rng: random.Random) -> Image.Image:
    """Stretch or squeeze the width or the height by a factor of 1.5-2."""
    width, height = image.size
    factor = rng.uniform(1.5, 2.0)
    if rng.random() < 0.5:
        factor = 1 / factor
    if rng.random() < 0.5:
        size = (max(1, round(width * factor)), height)
    else:
        size = (width, max(1, round(height * factor)))
    return _rgb(image).resize(size, _RESAMPLE)


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    """Turn by 5-10 degrees either way, then crop away the fill corners (see module doc)."""
    image = _rgb(image)
    degrees = _signed(rng, 5.0, 10.0)
    turned = image.rotate(degrees, resample=_RESAMPLE, expand=False)
    width, height = image.size
    cos, sin = math.cos(math.radians(abs(degrees))), math.sin(math.radians(abs(degrees)))
    scale = min(width / (width * cos + height * sin), height / (width * sin + height * cos))
    # One pixel less on each side: edge pixels of the turned picture blend with the fill.
    crop_w = max(1, math.floor(width * scale) - 2)
    crop_h = max(1, math.floor(height * scale) - 2)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return turned.crop((left, top, left + crop_w, top + crop_h))


def hflip(image: Image.Image, rng: random.Random) -> Image.Image:
    """Mirror left to right."""
    return ImageOps.mirror(_rgb(image))


# --- compression and filters ----------------------------------------------------------


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    _rgb(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def jpeg50(image: Image.Image, rng: random.Random) -> Image.Image:
    """Re-encode as JPEG at quality 50 (Pillow's default 4:2:0 chroma subsampling)."""
    return _jpeg(image, 50)


def jpeg30(image: Image.Image, rng: random.Random) -> Image.Image:
    """Re-encode as JPEG at quality 30."""
    return _jpeg(image, 30)


def jpeg10(image: Image.Image, rng: random.Random) -> Image.Image:
    """Re-encode as JPEG at quality 10."""
    return _jpeg(image, 10)


def _shift_hue(image: Image.Image, turn: float) -> Image.Image:
    hue, saturation, value = image.convert("HSV").split()
    delta = round(turn * 256)
    hue = hue.point([(level + delta) % 256 for level in range(256)])
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def color_jitter(image: Image.Image, rng: random.Random) -> Image.Image:
    """Change brightness, contrast, saturation and hue (see module doc for the ranges)."""
    image = _rgb(image)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(1 + _signed(rng, 0.2, 0.4))
    return _shift_hue(image, _signed(rng, 0.05, 0.10))


def grayscale(image: Image.Image, rng: random.Random) -> Image.Image:
    """Drop the colour; the result is still a three-channel RGB image."""
    return ImageOps.grayscale(_rgb(image)).convert("RGB")


def blur(image: Image.Image, rng: random.Random) -> Image.Image:
    """Gaussian blur with a radius of 0.3-0.5 % of the longer side (at least 0.5 px)."""
    radius = max(0.5, rng.uniform(0.003, 0.005) * max(image.size))
    return _rgb(image).filter(ImageFilter.GaussianBlur(radius))


# --- overlays -------------------------------------------------------------------------


def _fitted_font(caption: str, band_h: int, width: int) -> _Font:
    """Pillow's default font at 60 % of the band height, smaller if the caption is too wide."""
    probe_length = ImageFont.load_default(size=100).getlength(caption)
    by_width = 100 * 0.9 * width / max(1.0, probe_length)
    return ImageFont.load_default(size=max(1, math.floor(min(band_h * 0.6, by_width))))


def text(image: Image.Image, rng: random.Random) -> Image.Image:
    """A dark caption band across the full width at a random height (see module doc)."""
    base = _rgb(image).convert("RGBA")
    width, height = base.size
    band_h = max(1, round(height * rng.uniform(0.15, 0.25)))
    top = rng.randint(0, height - band_h)
    caption = rng.choice(_CAPTIONS)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, top, width - 1, top + band_h - 1), fill=(0, 0, 0, rng.randint(153, 230)))
    font = _fitted_font(caption, band_h, width)
    draw.text(
        (width / 2, top + band_h / 2), caption, fill=(255, 255, 255, 255), font=font, anchor="mm"
    )
    return Image.alpha_composite(base, overlay).convert("RGB")


def _draw_smiley(
    draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, alpha: int
) -> None:
    line = max(1, round(radius / 12))
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 204, 0, alpha))
    for side in (-1, 1):
        ex, ey, er = cx + side * radius * 0.35, cy - radius * 0.3, radius * 0.12
        draw.ellipse((ex - er, ey - er, ex + er, ey + er), fill=(40, 30, 20, alpha))
    mouth = (cx - radius * 0.55, cy - radius * 0.45, cx + radius * 0.55, cy + radius * 0.6)
    draw.arc(mouth, start=20, end=160, fill=(40, 30, 20, alpha), width=line)


def _draw_star(
    draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, colour: tuple[int, ...]
) -> None:
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else radius / 2
        angle = math.pi * i / 5 - math.pi / 2
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    draw.polygon(points, fill=colour, outline=(30, 30, 30, colour[3]))


def sticker(image: Image.Image, rng: random.Random) -> Image.Image:
    """Paste a smiley or a star covering 10-20 % of the area, opaque or semi-transparent."""
    base = _rgb(image).convert("RGBA")
    width, height = base.size
    area = rng.uniform(0.10, 0.20) * width * height
    alpha = 255 if rng.random() < 0.5 else rng.randint(153, 217)
    smiley = rng.random() < 0.5
    radius = math.sqrt(area / (math.pi if smiley else _STAR_AREA))
    radius = max(0.5, min(radius, min(width, height) / 2))
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if smiley:
        _draw_smiley(draw, cx, cy, radius, alpha)
    else:
        _draw_star(draw, cx, cy, radius, (*rng.choice(_STICKER_COLOURS), alpha))
    return Image.alpha_composite(base, overlay).convert("RGB")


def combo(image: Image.Image, rng: random.Random) -> Image.Image:
    """crop70, then color_jitter, then text, then jpeg30, all drawing from ``rng``."""
    return jpeg30(text(color_jitter(crop70(image, rng), rng), rng), rng)


TRANSFORMS: dict[str, Edit] = {
    "crop90": crop90,
    "crop70": crop70,
    "crop50": crop50,
    "crop30": crop30,
    "resize_small": resize_small,
    "aspect": aspect,
    "jpeg50": jpeg50,
    "jpeg30": jpeg30,
    "jpeg10": jpeg10,
    "rotate": rotate,
    "color_jitter": color_jitter,
    "grayscale": grayscale,
    "blur": blur,
    "text": text,
    "sticker": sticker,
    "hflip": hflip,
    "combo": combo,
}
"""The protocol's edits, by stable name, in the protocol's order."""

EDIT_NAMES: tuple[str, ...] = tuple(TRANSFORMS)
