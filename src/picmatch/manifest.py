"""A library's manifest: ``library.json`` in the library folder.

It records the model, the store URL, the indexed roots and the pipeline parameters the
vectors were made with, so a library keeps embedding the way it was built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from picmatch._sys import atomic_write
from picmatch.errors import LibraryNotFoundError, PicmatchError

MANIFEST = "library.json"
FORMAT_VERSION = 1


def new_manifest(
    folder: Path, model: str, store: str | None, params: Mapping[str, str] | None
) -> dict[str, Any]:
    from picmatch.models.registry import check_params, default_params

    if params is not None:
        check_params(model, params)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PicmatchError(f"cannot create the library folder {folder}: {exc}") from exc
    manifest = {
        "format": FORMAT_VERSION,
        "model": model,
        "store": store or "",  # empty: the embedded store inside the library folder
        "params": default_params(model) if params is None else dict(params),
        "roots": [],
    }
    write_manifest(folder, manifest)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LibraryNotFoundError(f"cannot read {folder / MANIFEST}: {exc}") from exc
    if not isinstance(data, dict) or "model" not in data:
        raise LibraryNotFoundError(f"{folder / MANIFEST} is not a picmatch library manifest")
    return data


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write(folder / MANIFEST, data.encode("utf-8"))
