"""Where a library keeps the server's thumbnails, and dropping those of images gone or changed.

A thumbnail is ``<library>/thumbnails/<id[:2]>/<id>-<content hash[:24]>-<size>.jpg`` (16 hex
digits of the image id), so one whose record is gone, or whose content hash changed, is stale.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

THUMBNAILS = "thumbnails"
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{1,24})-\d+\.jpg$")


def thumbnail_path(folder: Path, image_id: int, content_hash: str, size: int) -> Path:
    key = f"{image_id:016x}"
    return folder / key[:2] / f"{key}-{content_hash[:24]}-{size}.jpg"


def prune_thumbnails(folder: Path, current_hashes: Callable[[list[int]], dict[int, str]]) -> int:
    """Delete thumbnails whose image is no longer indexed or has other bytes now; returns how
    many. `current_hashes(ids)` gives the content hash of the ids still indexed."""
    found = list(_thumbnails(folder))
    if not found:
        return 0
    live = current_hashes(sorted({i for i, _, _ in found if i < 1 << 63}))  # ids are 63-bit
    dropped = 0
    for image_id, digest, path in found:
        if not live.get(image_id, "").startswith(digest):
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


def _thumbnails(folder: Path) -> Iterable[tuple[int, str, Path]]:
    try:
        shards = list(os.scandir(folder))
    except OSError:
        return
    for shard in shards:
        if not shard.is_dir(follow_symlinks=False):
            continue
        try:
            names = [entry.name for entry in os.scandir(shard.path)]
        except OSError:
            continue
        for name in names:
            match = _NAME.match(name)
            if match:
                yield int(match[1], 16), match[2], Path(shard.path) / name
