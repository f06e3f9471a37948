"""Sprite sheets of the library map: every image as a small square tile, many tiles per JPEG.

Sheet ``sheet-NNNN.jpg`` holds cells ``NNNN * PER_SHEET`` onward, row by row, `PER_SIDE` cells a
side, `CELL` pixels each; the page draws each image from its cell, so a map of 100k images is
about 100 requests, not 100k. An image that cannot be read gets a grey cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from picmatch._sys import atomic_writer, available_cpus
from picmatch.errors import ImageDecodeError
from picmatch.images.decode import decode_image

CELL = 32
PER_SIDE = 32
PER_SHEET = PER_SIDE * PER_SIDE
SHEET_SIDE = CELL * PER_SIDE
GREY = (96, 96, 96)
JPEG_QUALITY = 80


def sheet_name(number: int) -> str:
    return f"sheet-{number:04d}.jpg"


def tile(path: str, max_pixels: int) -> Image.Image:
    """The image at `path` as a CELL x CELL square (centre crop), or a grey square."""
    try:
        decoded = decode_image(Path(path), max_pixels=max_pixels, min_side=CELL)
    except (ImageDecodeError, OSError):
        return Image.new("RGB", (CELL, CELL), GREY)
    image = Image.fromarray(decoded.pixels)
    return ImageOps.fit(image, (CELL, CELL), Image.Resampling.BILINEAR)


class SheetWriter:
    """Writes tiles into the sheets of one map folder."""

    def __init__(self, folder: Path, *, max_pixels: int) -> None:
        self.folder = folder
        self.max_pixels = max_pixels

    def render(
        self,
        paths: Sequence[str],
        cells: npt.NDArray[np.int32],
        report: Callable[[Any], None],
        *,
        fresh: bool,
    ) -> npt.NDArray[np.uint8]:
        """Draw each path's tile into its cell; returns each tile's mean colour (n x 3).

        `fresh` starts every sheet blank (and removes sheets past the last one used); otherwise
        the sheets touched are read back and only the given cells change.
        """
        from picmatch.map_store import MapProgress

        colours = np.zeros((len(paths), 3), np.uint8)
        by_sheet: dict[int, list[int]] = defaultdict(list)
        for n, cell in enumerate(cells.tolist()):
            by_sheet[cell // PER_SHEET].append(n)
        if fresh:
            last = max(by_sheet, default=-1)
            for old in self.folder.glob("sheet-*.jpg"):
                if _number(old) > last:
                    old.unlink(missing_ok=True)
        done = 0
        report(MapProgress("thumbnails", 0, len(paths)))
        with ThreadPoolExecutor(available_cpus()) as pool:
            for number in sorted(by_sheet):
                rows = by_sheet[number]
                sheet = self._open(number, fresh)
                tiles = pool.map(lambda n: tile(paths[n], self.max_pixels), rows)
                for n, image in zip(rows, tiles, strict=True):
                    slot = int(cells[n]) % PER_SHEET
                    sheet.paste(image, ((slot % PER_SIDE) * CELL, (slot // PER_SIDE) * CELL))
                    colours[n] = np.asarray(image).reshape(-1, 3).mean(axis=0).astype(np.uint8)
                    done += 1
                    if done % 256 == 0:
                        report(MapProgress("thumbnails", done, len(paths)))
                with atomic_writer(self.folder / sheet_name(number)) as f:
                    sheet.save(f, "JPEG", quality=JPEG_QUALITY)
        report(MapProgress("thumbnails", len(paths), len(paths)))
        return colours

    def _open(self, number: int, fresh: bool) -> Image.Image:
        path = self.folder / sheet_name(number)
        if not fresh and path.is_file():
            try:
                with Image.open(path) as existing:
                    return existing.convert("RGB")
            except OSError:
                pass
        return Image.new("RGB", (SHEET_SIDE, SHEET_SIDE), (0, 0, 0))


def _number(path: Path) -> int:
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return -1
