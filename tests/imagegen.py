"""Images for tests: real photos bundled with scikit-image, and generated ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry",
    "retina", "rocket", "camera", "coins", "moon", "brick", "grass", "clock", "page",
)  # fmt: skip


def photo(name: str) -> Image.Image:
    """A photo bundled with scikit-image, as an RGB PIL image."""
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array)
    return image.convert("RGB")


def write_photos(folder: Path, names: tuple[str, ...] = PHOTOS) -> dict[str, Path]:
    """Save the named photos as JPEGs in `folder`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        path = folder / f"{name}.jpg"
        photo(name).save(path, quality=92)
        paths[name] = path
    return paths


def synthetic(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A distinct generated image: smooth random colour field with random rectangles."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.BICUBIC)
    pixels = np.asarray(image).copy()
    for _ in range(6):
        x0, y0 = rng.integers(0, size[0] - 40), rng.integers(0, size[1] - 40)
        w, h = rng.integers(20, 120), rng.integers(20, 120)
        pixels[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, size=3)
    return Image.fromarray(pixels)


def crop_center(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    cw, ch = int(w * share**0.5), int(h * share**0.5)
    left, top = (w - cw) // 3, (h - ch) // 3
    return image.crop((left, top, left + cw, top + ch))


DUPE_EDITS = ("crop", "mirror", "smallgray", "blur")


def write_dupes(folder: Path, names: tuple[str, ...] = ("chelsea", "astronaut", "coffee")) -> None:
    """Edited copies of the named photos beside them: 60 % crop, mirror, small grey, blur +
    heavy JPEG (`<name>-<edit>.*`), plus a byte-identical copy of rocket.jpg."""
    import shutil

    from PIL import ImageFilter

    for name in names:
        image = photo(name)
        crop_center(image, 0.6).save(folder / f"{name}-crop.jpg", quality=90)
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / f"{name}-mirror.jpg")
        small = image.convert("L").resize((image.width // 4, image.height // 4))
        small.save(folder / f"{name}-smallgray.png")
        image.filter(ImageFilter.GaussianBlur(3)).save(folder / f"{name}-blur.jpg", quality=15)
    shutil.copy(folder / "rocket.jpg", folder / "rocket-copy.jpg")
