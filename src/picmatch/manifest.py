"""A library's manifest: ``library.json`` in the library folder.

It records the model, the store URL and the pipeline parameters the vectors were made with,
so a library keeps embedding the way it was built. Its `format` is read on open: a newer one is
refused with what to do, an older one is upgraded (format 1 also held the indexed roots, which
now live in the store, where every process sees the current list).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from picmatch._sys import atomic_write
from picmatch.errors import FormatError, LibraryNotFoundError, PicmatchError, write_failure

MANIFEST = "library.json"
FORMAT_VERSION = 2


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
    version = data.get("format", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FormatError(
            f"the library in {folder} was written by a newer picmatch (format {version}; this "
            f"one reads up to {FORMAT_VERSION}): upgrade picmatch (pip install -U picmatch)"
        )
    return data


def needs_upgrade(manifest: Mapping[str, Any]) -> bool:
    return int(manifest.get("format", 1)) < FORMAT_VERSION


def upgrade_manifest(folder: Path, add_roots: Callable[[list[str]], None]) -> dict[str, Any]:
    """Bring the manifest in `folder` to the current format (call it holding the writer lock).

    Format 1 -> 2: the roots move to the store (`add_roots`), then leave library.json.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        raise LibraryNotFoundError(f"no picmatch library in {folder}")
    if needs_upgrade(manifest):
        add_roots([str(r) for r in manifest.pop("roots", [])])
        manifest["format"] = FORMAT_VERSION
        write_manifest(folder, manifest)
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    try:
        atomic_write(folder / MANIFEST, data.encode("utf-8"))
    except OSError as exc:
        raise write_failure(folder, exc) from exc
