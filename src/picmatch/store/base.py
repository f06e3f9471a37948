"""The `VectorStore` contract. Every backend implements it and passes tests/contract/.

A store holds named vector spaces. Each space remembers the model that made its vectors
(spec, dimension, metric, pipeline parameters) and refuses vectors from anything else.
A record is one indexed file: a stable int64 id, its vector and its payload.

A space that does not exist reads as empty: `get` gives [], `iter_payloads`, `iter_records` and
`ids_in_folders` give nothing, `count` gives 0, `search` gives one empty list per query, and
`delete` and `drop_space` do nothing. Only `upsert` needs the space and raises StoreError without
it. Callers therefore never ask `get_space` first, which saves a round trip on a networked store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from picmatch.errors import SpaceMismatchError

FloatArray = npt.NDArray[np.float32]

SCHEMA_VERSION = 1


class Metric(StrEnum):
    COSINE = "cosine"  # vectors are L2-normalised; score = inner product


@dataclass(frozen=True)
class SpaceInfo:
    name: str
    dim: int
    metric: Metric
    model_spec: str
    params: Mapping[str, str] = field(default_factory=dict)  # pipeline settings used to embed
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True)
class Payload:
    path: str  # absolute path
    content_hash: str
    size: int
    mtime_ns: int
    width: int
    height: int
    taken_at: float | None = None  # seconds since the epoch, from EXIF where known


@dataclass(frozen=True)
class Record:
    id: int
    vector: FloatArray  # shape (dim,), float32, L2-normalised
    payload: Payload


@dataclass(frozen=True)
class StoreHit:
    id: int
    score: float
    payload: Payload


@dataclass(frozen=True)
class SearchFilter:
    """Restricts a search. Empty fields mean no restriction."""

    path_prefixes: tuple[str, ...] = ()  # absolute folder paths; a hit must be inside one
    exclude_ids: frozenset[int] = frozenset()

    def accepts(self, record_id: int, path: str) -> bool:
        if record_id in self.exclude_ids:
            return False
        if not self.path_prefixes:
            return True
        return any(path_in_folder(path, prefix) for prefix in self.path_prefixes)


_SPACE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


def valid_space_name(name: str) -> bool:
    """Space names are plain identifiers in every backend: lowercase letters, digits and _."""
    return bool(_SPACE_NAME.match(name))


def check_same_space(existing: SpaceInfo, wanted: SpaceInfo) -> None:
    """Raise SpaceMismatchError unless `wanted` describes the same vectors as `existing`."""
    same = (existing.dim, existing.metric, existing.model_spec) == (
        wanted.dim,
        wanted.metric,
        wanted.model_spec,
    )
    if not same or dict(existing.params) != dict(wanted.params):
        raise SpaceMismatchError(
            f"space {existing.name!r} holds vectors of {existing.model_spec} "
            f"(dim {existing.dim}, {existing.metric}, {dict(existing.params)}), not of "
            f"{wanted.model_spec} (dim {wanted.dim}, {dict(wanted.params)}); "
            "re-index into a new library or remove this space first"
        )


def path_in_folder(path: str, folder: str) -> bool:
    folder = folder.rstrip("/\\")
    return path == folder or path.startswith(folder + "/") or path.startswith(folder + "\\")


@runtime_checkable
class VectorStore(Protocol):
    """Vectors plus payloads, searchable by similarity: store/sqlite.py, store/milvus.py."""

    url: str

    def ensure_space(self, info: SpaceInfo) -> SpaceInfo:
        """Create the space, or check that the existing one matches; raises SpaceMismatchError."""
        ...

    def get_space(self, name: str) -> SpaceInfo | None: ...

    def list_spaces(self) -> list[SpaceInfo]: ...

    def drop_space(self, name: str) -> None: ...

    def upsert(
        self, space: str, records: Sequence[Record], *, replacing: Iterable[int] = ()
    ) -> None:
        """Insert or replace records by id, and delete the `replacing` ids (records these ones
        take over, as in a move) in the same transaction where the backend has transactions, or
        before the write where it has not, so an interruption never leaves both. Durable when
        this returns."""
        ...

    def delete(self, space: str, ids: Iterable[int]) -> None: ...

    def get(self, space: str, ids: Sequence[int]) -> list[Record]:
        """The records that exist among `ids`, in the order asked."""
        ...

    def iter_payloads(self, space: str) -> Iterator[tuple[int, Payload]]: ...

    def ids_in_folders(self, space: str, folders: Sequence[str]) -> list[int]:
        """Ids of the records whose path is one of `folders` or inside one (absolute paths)."""
        ...

    def iter_records(self, space: str, batch: int = 4096) -> Iterator[list[Record]]:
        """Every record, vectors included, in batches of at most `batch` (bounded memory)."""
        ...

    def roots(self) -> list[str]:
        """The library's indexed folders (absolute paths), in the order they were added."""
        ...

    def add_roots(self, paths: Sequence[str]) -> None:
        """Add folders to `roots` (those already there stay once). Durable when this returns."""
        ...

    def remove_roots(self, paths: Sequence[str]) -> None: ...

    def search(
        self,
        space: str,
        vectors: FloatArray,
        k: int,
        flt: SearchFilter | None = None,
    ) -> list[list[StoreHit]]:
        """Top-k hits per query row, best first, score = cosine similarity."""
        ...

    def count(self, space: str) -> int: ...

    def index_info(self, space: str) -> dict[str, object]:
        """What `picmatch info` shows of the space's search index: ``kind`` and ``vectors``, and
        where known ``memory_bytes``, ``recall_at_10`` and the index's settings; {} without
        the space."""
        ...

    def size_bytes(self) -> int:
        """Disk (or server) bytes used by this store, best effort."""
        ...

    def flush(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Persist derived state (e.g. an ANN index) so a new process opens it fast; this is
        where such state is rebuilt when needed, reporting `progress(done, total)`."""
        ...

    def close(self) -> None: ...
