"""What searches and lookups return: plain frozen records, free of store and model types."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from picmatch._sys import display_path
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
    models: tuple[str, ...] = ()  # every vector space's model, the default first
    text_models: tuple[str, ...] = ()  # those that answer text queries
    index: dict[str, object] = field(default_factory=dict)  # search index: kind, recall...


def hit_of(h: StoreHit) -> Hit:
    p = h.payload
    return Hit(h.id, p.path, min(1.0, max(-1.0, h.score)), p.width, p.height, p.content_hash)


def info_of(image_id: int, p: Payload) -> ImageInfo:
    return ImageInfo(image_id, p.path, p.width, p.height, p.size, p.content_hash, p.taken_at)


@dataclass(frozen=True)
class DupeMember:
    """One image of a duplicate group, with its evidence against the group's keeper."""

    id: int
    path: str
    width: int
    height: int
    size: int
    mtime_ns: int
    keeper: bool
    protected: bool  # inside a --keep-in folder: never moved
    score: float  # embedding cosine score against the keeper (1.0 for the keeper)
    distance: int | None  # perceptual-hash distance to the keeper, of 64 bits; None: unknown
    same_bytes: bool  # byte-identical to the keeper

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "id": str(self.id), "path": display_path(self.path)}


@dataclass(frozen=True)
class DupeGroup:
    members: tuple[DupeMember, ...]  # the keeper first, then by score against it

    @property
    def keeper(self) -> DupeMember:
        return self.members[0]

    def to_dict(self) -> dict[str, Any]:
        return {"keeper": str(self.keeper.id), "members": [m.to_dict() for m in self.members]}


@dataclass(frozen=True)
class DupeReport:
    tier: str
    rule: str  # when a pair counts, in words
    keeper_rule: str
    images: int  # images looked at
    hashed: int  # images hashed during this run (the rest came from the cache)
    seconds: float
    groups: tuple[DupeGroup, ...]

    @property
    def redundant(self) -> int:
        """Images that are not keepers (what a move would take away)."""
        return sum(len(g.members) - 1 for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        head = {k: v for k, v in asdict(self).items() if k != "groups"}
        return {**head, "redundant": self.redundant, "groups": [g.to_dict() for g in self.groups]}
