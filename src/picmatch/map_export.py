"""`picmatch map --html OUT`: the library map as a self-contained folder that opens from disk.

OUT/index.html, OUT/static/{map.js, map.css, map-data.js}, OUT/sheets/sheet-NNNN.jpg. The data
is a script, not JSON, so the page works from file:// (browsers refuse fetch() there). A
published map shows folder names relative to the indexed roots and no image ids or full paths.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from picmatch._sys import atomic_write
from picmatch.errors import ConfigError, NotIndexedError
from picmatch.map_payload import map_document
from picmatch.map_sheets import sheet_name
from picmatch.map_store import load_map, map_folder

if TYPE_CHECKING:
    from picmatch.library import Library

STATIC = Path(__file__).parent / "server" / "static"
MARKER = ".picmatch-map"  # marks a folder as an export we may overwrite


def export_map(library: Library, out: str | os.PathLike[str]) -> Path:
    """Write the export of the library's stored map into `out`; returns the folder."""
    folder = Path(out).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file; give a folder for the exported map")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise ConfigError(f"{folder} is not empty; give a new or empty folder for the map")
    stored = load_map(library)
    if stored is None:
        raise NotIndexedError(
            f"this library has no map yet: run picmatch map --library {library.path}"
        )
    document = map_document(library, stored, public=True)
    (folder / "static").mkdir(parents=True, exist_ok=True)
    (folder / "sheets").mkdir(exist_ok=True)
    (folder / MARKER).write_text("written by picmatch map --html\n")
    for name in ("map.js", "map.css"):
        shutil.copyfile(STATIC / name, folder / "static" / name)
    data = "window.PICMATCH_MAP = " + json.dumps(document, separators=(",", ":")) + ";\n"
    atomic_write(folder / "static" / "map-data.js", data.encode("utf-8"))
    page = (
        (STATIC / "map.html")
        .read_text("utf-8")
        .replace(
            '<script src="static/map.js" defer></script>',
            '<script src="static/map-data.js" defer></script>\n'
            '  <script src="static/map.js" defer></script>',
        )
    )
    atomic_write(folder / "index.html", page.encode("utf-8"))
    for old in (folder / "sheets").glob("sheet-*.jpg"):
        old.unlink()
    for number in range(document["sheets"]):
        source = map_folder(library) / sheet_name(number)
        if source.is_file():
            shutil.copyfile(source, folder / "sheets" / sheet_name(number))
    return folder
