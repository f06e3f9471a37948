"""What searches and lookups return: plain frozen records, free of store and model types."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from picmatch.store.base import Payload, StoreHit


@dataclass(frozen=True)
class Hit:
    """One search result. `score` is the cosine similarity in [-1, 1]; higher is more similar."""

    id: int
    path: str
    score: float
    width: int
    height: int
    content_hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImageInfo:
    id: int
    path: str
    width: int
    height: int
    size: int
    content_hash: str
    taken_at: float | None


@dataclass(frozen=True)
class LibraryStats:
    path: str
    model: str
    store: str
    images: int
    store_bytes: int
    roots: tuple[str, ...]
    params: dict[str, str]


def hit_of(h: StoreHit) -> Hit:
    p = h.payload
    return Hit(h.id, p.path, min(1.0, max(-1.0, h.score)), p.width, p.height, p.content_hash)


def info_of(image_id: int, p: Payload) -> ImageInfo:
    return ImageInfo(image_id, p.path, p.width, p.height, p.size, p.content_hash, p.taken_at)
