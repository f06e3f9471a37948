"""The library map as the page reads it: one JSON document of parallel arrays.

Used by the server (``GET /api/map``) and the static export (``picmatch map --html``).
Ids are decimal strings (they are 63-bit); positions are rounded to 1e-5 of the map's side;
names and folders are shown as everywhere else (bytes that are not UTF-8 as \\xNN escapes).
"""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from picmatch._sys import display_path
from picmatch.map_sheets import CELL, PER_SHEET, PER_SIDE
from picmatch.map_store import LibraryMap

if TYPE_CHECKING:
    from picmatch.library import Library


def map_document(library: Library, stored: LibraryMap, *, public: bool = False) -> dict[str, Any]:
    """Everything the page draws. `public` (the static export) leaves out ids and shows folders
    relative to the indexed roots' parents, so a published map does not reveal local paths."""
    paths = {i: p.path for i, p in library.store.iter_payloads(library.space)}
    roots = [str(r) for r in library.roots]
    folders: dict[str, int] = {}
    folder_of, names = [], []
    for image_id in stored.ids.tolist():
        path = paths.get(image_id, "")
        folder, name = os.path.split(path)
        shown = _relative(folder, roots) if public else folder
        folder_of.append(folders.setdefault(display_path(shown), len(folders)))
        names.append(display_path(name))
    cells = stored.cells.tolist()
    sheets = max(cells, default=-1) // PER_SHEET + 1
    colours = stored.colours.astype(int)
    document: dict[str, Any] = {
        "version": int(stored.meta.get("version", 0)),
        "model": library.model_spec,
        "count": len(stored),
        "cell": CELL,
        "per_side": PER_SIDE,
        "sheets": sheets,
        "x": [round(v, 5) for v in stored.xy[:, 0].tolist()],
        "y": [round(v, 5) for v in stored.xy[:, 1].tolist()],
        "cells": cells,
        "colours": ((colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]).tolist(),
        "folders": list(folders),
        "folder": folder_of,
        "names": names,
    }
    if not public:
        document["ids"] = [str(i) for i in stored.ids.tolist()]
    return document


def map_json(library: Library, stored: LibraryMap, *, public: bool = False) -> bytes:
    document = map_document(library, stored, public=public)
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _relative(folder: str, roots: list[str]) -> str:
    for root in sorted(roots, key=len, reverse=True):
        if folder == root or folder.startswith(root.rstrip("/\\") + os.sep):
            parent = str(PurePath(root).parent)
            return os.path.relpath(folder, parent)
    return PurePath(folder).name
