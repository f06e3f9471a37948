"""Evaluation sets on disk: the manifest format and typed loaders.

A near-duplicate set is a folder with ``manifest.json`` listing the images to index
(originals and distractors) and the edited copies to search with; a copy whose original is
not indexed is a negative query. A category set lists images with a label. Paths in a
manifest are relative to its folder. ``benchmarks/datasets.py`` writes both sets of the
protocol in this format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"


class ItemKind(StrEnum):
    ORIGINAL = "original"
    DISTRACTOR = "distractor"


@dataclass(frozen=True)
class IndexItem:
    id: str
    path: Path
    kind: ItemKind


@dataclass(frozen=True)
class Query:
    path: Path
    edit: str
    original: str | None
    """The indexed id this copy should find; None for a negative query."""
    source: str
    """The original the copy was made from (a held-out one for negative queries)."""

    @property
    def is_negative(self) -> bool:
        return self.original is None


@dataclass(frozen=True)
class NearDupSet:
    folder: Path
    index: tuple[IndexItem, ...]
    queries: tuple[Query, ...]

    @property
    def positives(self) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if not q.is_negative)

    @property
    def negatives(self) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if q.is_negative)

    @property
    def edits(self) -> tuple[str, ...]:
        """Edit names in first-seen order."""
        return tuple(dict.fromkeys(q.edit for q in self.queries))

    def for_edit(self, edit: str) -> tuple[Query, ...]:
        return tuple(q for q in self.queries if q.edit == edit)


@dataclass(frozen=True)
class CategoryItem:
    id: str
    path: Path
    label: str


@dataclass(frozen=True)
class CategorySet:
    folder: Path
    items: tuple[CategoryItem, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({item.label for item in self.items}))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The raw manifest of a set folder; a clear error when it is missing or outdated."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: build the set first")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path} has another format version: rebuild the set")
    return manifest


def load_neardup_set(folder: Path) -> NearDupSet:
    folder = Path(folder)
    manifest = read_manifest(folder)
    index = tuple(
        IndexItem(e["id"], folder / e["path"], ItemKind(e["kind"])) for e in manifest["index"]
    )
    queries = tuple(
        Query(folder / q["path"], q["edit"], q["original"], q["source"])
        for q in manifest["queries"]
    )
    return NearDupSet(folder, index, queries)


def load_category_set(folder: Path) -> CategorySet:
    folder = Path(folder)
    manifest = read_manifest(folder)
    items = tuple(CategoryItem(e["id"], folder / e["path"], e["label"]) for e in manifest["items"])
    return CategorySet(folder, items)
