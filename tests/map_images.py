"""Two visually distinct families of generated images, for the library map's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = (192, 144)


def sunset(seed: int) -> Image.Image:
    """Family "sunsets": a warm vertical gradient with a bright disc and soft horizon bands."""
    rng = np.random.default_rng(1000 + seed)
    w, h = SIZE
    top = np.array([rng.integers(200, 256), rng.integers(60, 140), rng.integers(0, 60)])
    bottom = np.array([rng.integers(120, 200), rng.integers(20, 60), rng.integers(40, 110)])
    t = np.linspace(0, 1, h)[:, None, None]
    pixels = (top * (1 - t) + bottom * t).repeat(w, axis=1).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    cx, cy, r = rng.integers(30, w - 30), rng.integers(20, h // 2), rng.integers(12, 30)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, int(rng.integers(200, 250)), 120))
    horizon = int(rng.integers(h // 2, h - 20))
    draw.rectangle((0, horizon, w, h), fill=(int(rng.integers(30, 70)), 20, 30))
    return image


def grid(seed: int) -> Image.Image:
    """Family "grids": cool blue-green checkerboards with thin random lines."""
    rng = np.random.default_rng(2000 + seed)
    w, h = SIZE
    step = int(rng.integers(10, 24))
    a = (int(rng.integers(0, 40)), int(rng.integers(90, 180)), int(rng.integers(150, 256)))
    b = (int(rng.integers(180, 256)), 255, int(rng.integers(200, 256)))
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((xx // step + yy // step) % 2).astype(bool)
    pixels = np.where(checker[..., None], np.array(a), np.array(b)).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, w, 4))
        draw.line((x0, y0 % h, x1, y1 % h), fill=(0, 40, 90), width=2)
    return image


def write_families(folder: Path, per_family: int, *, start: int = 0) -> dict[str, list[Path]]:
    """`per_family` JPEGs of each family under folder/sunsets and folder/grids."""
    out: dict[str, list[Path]] = {"sunsets": [], "grids": []}
    for family, make in (("sunsets", sunset), ("grids", grid)):
        (folder / family).mkdir(parents=True, exist_ok=True)
        for n in range(start, start + per_family):
            path = folder / family / f"{family[:-1]}-{n:03d}.jpg"
            make(n).save(path, quality=90)
            out[family].append(path)
    return out


def separation(xy: np.ndarray, family: np.ndarray) -> tuple[float, float]:
    """(mean distance within a family, mean distance between the families) of 2-D points."""
    d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    same = family[:, None] == family[None, :]
    off = ~np.eye(len(xy), dtype=bool)
    return float(d[same & off].mean()), float(d[~same].mean())
