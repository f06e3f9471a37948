"""Planted duplicate sets for ``benchmarks/dupes_quality.py``: originals, edited copies, clip-art.

Built from the protocol's near-duplicate set (``benchmarks/datasets.py``: GNOME and MATE
wallpapers, tuxpaint stamps as distractors). Two planted sets, each split in two halves by
original (alternating in id order): ``tune`` (thresholds are chosen here) and ``test`` (the
figures are reported here).

* ``six``: the issue's edits, made here with fixed seeds: crop keeping 60 % of the area,
  mirror, small grey (1/4 side), blur + JPEG quality 15, rotation by 12 degrees (same canvas,
  white corners) and a text banner; each original with its 6 copies is one planted group.
* ``protocol``: the protocol's 17 edited copies of each original (``queries/<edit>/``).

Distractors are tuxpaint stamps spread over the package's categories (leaf folders): one from
each category in turn (seeded order inside a category), alternating between the halves, so
few siblings (hand signs, letters of one alphabet) share a folder. Stamps named ``*_mirror``
are left out: they are mirrored copies of other stamps, true duplicates nobody labelled.

Importable helper for ``benchmarks/``; not a test module.
"""

from __future__ import annotations

import io
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 20261126
SPLITS = ("tune", "test")
MIRRORED = "_mirror"  # tuxpaint ships mirrored twins of some stamps: duplicates, not distractors


def _crop60(image: Image.Image, rng: random.Random) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * 0.6**0.5), round(h * 0.6**0.5)
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((left, top, left + cw, top + ch))


def _mirror(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def _small_grey(image: Image.Image, rng: random.Random) -> Image.Image:
    w, h = image.size
    return image.convert("L").resize((max(1, w // 4), max(1, h // 4)), Image.Resampling.LANCZOS)


def _blur_jpeg(image: Image.Image, rng: random.Random) -> Image.Image:
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(2.5)).save(buffer, "JPEG", quality=15)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _rotate12(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = 12.0 if rng.random() < 0.5 else -12.0
    return image.rotate(angle, Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))


def _banner(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.copy()
    w, h = out.size
    band = max(8, h // 7)
    top = h - band if rng.random() < 0.5 else 0
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, top, w, top + band), fill=(20, 20, 20))
    font = ImageFont.load_default(size=max(8, band * 2 // 3))
    text = rng.choice(("SALE 50% OFF", "do not repost", "Best day ever!", "#throwback"))
    draw.text((band // 3, top + band // 6), text, fill=(255, 255, 255), font=font)
    return out


SIX_EDITS: dict[str, Callable[[Image.Image, random.Random], Image.Image]] = {
    "crop60": _crop60,
    "mirror": _mirror,
    "small_grey": _small_grey,
    "blur_jpeg15": _blur_jpeg,
    "rotate12": _rotate12,
    "banner": _banner,
}


@dataclass(frozen=True)
class PlantedItem:
    path: Path
    group: str | None  # the original's id; None for a distractor
    edit: str | None  # None for an original or a distractor


def spread(paths: list[Path], category: dict[str, tuple[str, ...]]) -> list[Path]:
    """Round-robin over categories, so the first N paths come from as many as possible."""
    by_category: dict[tuple[str, ...], list[Path]] = {}
    for path in paths:
        by_category.setdefault(category.get(path.stem, ()), []).append(path)
    queues = []
    for key in sorted(by_category):
        members = sorted(by_category[key])
        random.Random(f"{SEED}:{'/'.join(key)}").shuffle(members)
        queues.append(members)
    order: list[Path] = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def build(
    source: Path,
    out: Path,
    *,
    distractors_per_split: int,
    category: dict[str, tuple[str, ...]],
) -> dict[str, list[PlantedItem]]:
    """Write the planted folders under ``out/<set>-<split>/`` (once); items per folder.
    `category` maps a stamp id to its folders in the tuxpaint package."""
    originals = sorted((source / "index" / "originals").glob("*.png"))
    originals += sorted((source / "heldout").glob("*.png"))
    stamps = sorted((source / "index" / "distractors").glob("*.png"))
    clipart = spread([p for p in stamps if not p.stem.endswith(MIRRORED)], category)
    items: dict[str, list[PlantedItem]] = {}
    for s, split in enumerate(SPLITS):
        mine = originals[s::2]
        extra = clipart[s::2][:distractors_per_split]
        for name in ("six", "protocol"):
            folder = out / f"{name}-{split}"
            items[folder.name] = _write(folder, mine, extra, source, name)
    return items


def _write(
    folder: Path, originals: list[Path], extra: list[Path], source: Path, kind: str
) -> list[PlantedItem]:
    done = folder / ".complete"
    items: list[PlantedItem] = []
    fresh = not done.exists()
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    for original in originals:
        gid = original.stem
        target = folder / "originals" / original.name
        items.append(PlantedItem(target, gid, None))
        if fresh:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(original, target)
        for edit, copy_path in _copies(original, folder, source, kind, fresh):
            items.append(PlantedItem(copy_path, gid, edit))
    for path in extra:
        target = folder / "distractors" / path.name
        items.append(PlantedItem(target, None, None))
        if fresh:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    if fresh:
        done.write_text("ok\n")
    return items


def _copies(
    original: Path, folder: Path, source: Path, kind: str, fresh: bool
) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if kind == "protocol":
        for edit_dir in sorted((source / "queries").iterdir()):
            src = edit_dir / original.name
            if src.exists():
                target = folder / "copies" / edit_dir.name / original.name
                if fresh:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, target)
                out.append((edit_dir.name, target))
        return out
    image = Image.open(original).convert("RGB")
    for edit, transform in SIX_EDITS.items():
        suffix = ".jpg" if edit == "blur_jpeg15" else ".png"
        target = folder / "copies" / edit / (original.stem + suffix)
        if fresh:
            rng = random.Random(f"{SEED}:{original.stem}:{edit}")
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = transform(image, rng)
            if suffix == ".jpg":
                copy.save(target, quality=15)
            else:
                copy.save(target)
        out.append((edit, target))
    return out
