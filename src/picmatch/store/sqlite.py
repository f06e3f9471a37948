"""The embedded default store: SQLite (WAL) is the source of truth, FAISS a derived index.

Every write bumps the space's `generation` and stamps the rows it wrote (`seq`) or deleted
(`deletions`). An in-memory index (store/vector_index.py) remembers the generation it reflects,
so before a search it catches up with whatever this or any other process wrote since (new
vectors are searchable at once), or loads the index another process saved since. `flush()`,
run at the end of every index run, rebuilds the index when its kind or tuning no longer fits
the space's size (store/index_build.py) and saves it, so the next process starts from there.
Searches never build, except to repair a lost or unreadable index file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch.errors import SpaceMismatchError, StoreError, write_failure
from picmatch.store.base import (
    FloatArray,
    Metric,
    Payload,
    Record,
    SearchFilter,
    SpaceInfo,
    StoreHit,
    check_same_space,
    valid_space_name,
)
from picmatch.store.index_build import build_index
from picmatch.store.sqlite_schema import (
    DB_NAME,
    connect,
    create_or_migrate,
    create_space_tables,
    is_current,
    path_key,
    path_text,
    store_format,
    stored_key,
)
from picmatch.store.sqlite_write import Transaction
from picmatch.store.vector_index import Progress, VectorIndex

_PAYLOAD_COLUMNS = "path, content_hash, size, mtime_ns, width, height, taken_at"
_CHUNK = 4096
_log = logging.getLogger(__name__)


class SqliteStore:
    """`VectorStore` in one folder: `picmatch.db` plus one index file pair per space."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.url = f"sqlite://{self.folder}"
        try:
            self._db, self.read_only = connect(self.folder)
            if not is_current(self._db, self.folder) and not self.read_only:
                with self._write():
                    create_or_migrate(self._db, self.folder)
            self._format = store_format(self._db)  # older only when read-only: read it as is
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store in {self.folder}: {exc}") from exc
        self._lock = threading.RLock()
        self._indexes: dict[str, VectorIndex] = {}
        self._stamps: dict[str, tuple[int, int] | None] = {}  # saved index files seen
        self._dims: dict[str, int] = {}

    # spaces

    def ensure_space(self, info: SpaceInfo) -> SpaceInfo:
        if not valid_space_name(info.name):
            raise StoreError(f"invalid space name {info.name!r}: use lowercase letters, digits, _")
        with self._lock:
            existing = self.get_space(info.name)
            if existing is not None:
                check_same_space(existing, info)
                return existing
            with self._write():
                self._db.execute(
                    "INSERT INTO spaces VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (
                        info.name,
                        info.dim,
                        info.metric.value,
                        info.model_spec,
                        json.dumps(dict(info.params), sort_keys=True),
                        info.schema_version,
                    ),
                )
                create_space_tables(self._db, info.name)
            return info

    def get_space(self, name: str) -> SpaceInfo | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, dim, metric, model_spec, params, schema_version FROM spaces "
                "WHERE name = ?",
                (name,),
            ).fetchone()
        return None if row is None else _space_from_row(row)

    def list_spaces(self) -> list[SpaceInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, dim, metric, model_spec, params, schema_version FROM spaces "
                "ORDER BY name"
            ).fetchall()
        return [_space_from_row(row) for row in rows]

    def drop_space(self, name: str) -> None:
        with self._lock:
            if self._dim(name) is None:
                return
            with self._write():
                self._db.execute("DELETE FROM spaces WHERE name = ?", (name,))
                self._db.execute(f'DROP TABLE "records_{name}"')
                self._db.execute(f'DROP TABLE "deletions_{name}"')
            self._indexes.pop(name, None)
            self._stamps.pop(name, None)
            self._dims.pop(name, None)
            VectorIndex.remove_files(self.folder, name)

    # records

    def upsert(
        self, space: str, records: Sequence[Record], *, replacing: Iterable[int] = ()
    ) -> None:
        written = {r.id for r in records}
        gone = [(int(i),) for i in replacing if int(i) not in written]
        if not records:
            self.delete(space, [i for (i,) in gone])
            return
        with self._lock:
            dim = self._require(space)
            rows = [_record_row(r, dim) for r in records]
            with self._write():
                seq = self._bump(space)
                self._db.executemany(
                    f'INSERT OR REPLACE INTO "records_{space}" VALUES (?,?,?,?,?,?,?,?,{seq},?)',
                    rows,
                )
                self._db.executemany(
                    f'DELETE FROM "deletions_{space}" WHERE id = ?', [(r.id,) for r in records]
                )
                self._db.executemany(f'DELETE FROM "records_{space}" WHERE id = ?', gone)
                self._db.executemany(
                    f'INSERT OR REPLACE INTO "deletions_{space}" VALUES (?, {seq})', gone
                )

    def delete(self, space: str, ids: Iterable[int]) -> None:
        id_list = [(int(i),) for i in ids]
        if not id_list:
            return
        with self._lock:
            if self._dim(space) is None:
                return
            with self._write():
                seq = self._bump(space)
                self._db.executemany(f'DELETE FROM "records_{space}" WHERE id = ?', id_list)
                self._db.executemany(
                    f'INSERT OR REPLACE INTO "deletions_{space}" VALUES (?, {seq})', id_list
                )

    def get(self, space: str, ids: Sequence[int]) -> list[Record]:
        with self._lock:
            dim = self._dim(space)
            if dim is None:
                return []
            found: dict[int, Record] = {}
            for chunk in _chunks([int(i) for i in ids]):
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f'SELECT id, {_PAYLOAD_COLUMNS}, vector FROM "records_{space}" '
                    f"WHERE id IN ({marks})",
                    chunk,
                ):
                    found[row[0]] = Record(row[0], _vector(row[8], dim), _payload(row[1:8]))
        return [found[i] for i in ids if i in found]

    def iter_payloads(self, space: str) -> Iterator[tuple[int, Payload]]:
        with self._lock:
            if self._dim(space) is None:
                return
            rows = self._db.execute(
                f'SELECT id, {_PAYLOAD_COLUMNS} FROM "records_{space}" ORDER BY id'
            ).fetchall()
        for row in rows:
            yield row[0], _payload(row[1:])

    def iter_records(self, space: str, batch: int = 4096) -> Iterator[list[Record]]:
        last: int | None = None
        while True:
            after = "" if last is None else f"WHERE id > {int(last)}"
            with self._lock:
                dim = self._dim(space)
                if dim is None:
                    return
                rows = self._db.execute(
                    f'SELECT id, {_PAYLOAD_COLUMNS}, vector FROM "records_{space}" '
                    f"{after} ORDER BY id LIMIT ?",
                    (batch,),
                ).fetchall()
            if not rows:
                return
            yield [Record(r[0], _vector(r[8], dim), _payload(r[1:8])) for r in rows]
            last = rows[-1][0]

    def ids_in_folders(self, space: str, folders: Sequence[str]) -> list[int]:
        with self._lock:
            if self._dim(space) is None or not folders:
                return []
            return self._ids_in(space, folders)

    def count(self, space: str) -> int:
        with self._lock:
            if self._dim(space) is None:
                return 0
            (n,) = self._db.execute(f'SELECT COUNT(*) FROM "records_{space}"').fetchone()
        return int(n)

    # roots: the folders a library indexes, kept in the database so every process sees the
    # current list and writers serialise on it

    def roots(self) -> list[str]:
        if self._format < 2:
            return []  # a read-only store of an older format: the roots are in library.json
        with self._lock:
            rows = self._db.execute("SELECT path FROM roots ORDER BY rowid").fetchall()
        return [path_text(row[0]) for row in rows]

    def add_roots(self, paths: Sequence[str]) -> None:
        with self._lock, self._write():
            self._db.executemany(
                "INSERT OR IGNORE INTO roots (path) VALUES (?)", [(path_key(p),) for p in paths]
            )

    def remove_roots(self, paths: Sequence[str]) -> None:
        with self._lock, self._write():
            self._db.executemany(
                "DELETE FROM roots WHERE path = ?", [(path_key(p),) for p in paths]
            )

    # search

    def search(
        self, space: str, vectors: FloatArray, k: int, flt: SearchFilter | None = None
    ) -> list[list[StoreHit]]:
        if k < 1:
            raise StoreError(f"k must be at least 1, got {k}")
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        with self._lock:
            dim = self._dim(space)
            if dim is None:
                return [[] for _ in queries]
            if queries.shape[1] != dim:
                raise SpaceMismatchError(
                    f"query vectors have dimension {queries.shape[1]}, space {space!r} has {dim}"
                )
            index = self._synced_index(space)
            allowed = self._allowed_ids(space, flt)
            excluded = flt.exclude_ids if flt else frozenset()
            fetch = lambda ids: self._vectors(space, ids)  # noqa: E731
            scores, ids = index.search(queries, k, allowed, excluded, fetch)
            payloads = self._payloads(space, {int(i) for i in ids.ravel() if i >= 0})
        return [
            [
                StoreHit(int(i), float(s), payloads[int(i)])
                for s, i in zip(row_scores, row_ids, strict=True)
                if i >= 0 and int(i) in payloads
            ]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    def flush(self, progress: Progress | None = None) -> None:
        """Catch every index up, rebuild those whose kind or tuning no longer fits their size
        (searches go on with the old index meanwhile), and save what changed."""
        if self.read_only:
            return  # indexes are caught up in memory; nothing may be saved here
        progress = progress or _quiet
        for info in self.list_spaces():
            with self._lock:
                index = self._synced_index(info.name, progress)
                rebuild = index.needs_rebuild()
            if rebuild:
                built = build_index(self.folder / DB_NAME, info.name, info.dim, progress)
                with self._lock:
                    self._swap(info.name, built)
            with self._lock:
                index = self._synced_index(info.name)
                saved = VectorIndex.load_generation(self.folder, info.name)
                if saved != index.generation or rebuild:
                    try:
                        index.save(self.folder, info.name)
                    except (OSError, RuntimeError) as exc:  # FAISS raises RuntimeError
                        raise write_failure(self.folder, exc) from exc
                    self._stamps[info.name] = VectorIndex.saved_stamp(self.folder, info.name)

    def index_info(self, space: str) -> dict[str, object]:
        """The space's search index: kind, vectors, memory, recall@10 measured at build time
        (read from the saved index's metadata where this process has not loaded it)."""
        with self._lock:
            if self._dim(space) is None:
                return {}
            index = self._indexes.get(space)
            if index is not None:
                return index.info()
            saved = VectorIndex.saved_info(self.folder, space)
            return saved if saved is not None else {"kind": "none yet"}

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())

    def close(self) -> None:
        with self._lock:
            self._db.close()
            for index in self._indexes.values():
                index.drop_coarse()
            self._indexes.clear()

    # internals

    def _write(self) -> Transaction:
        return Transaction(self._db, self.folder)

    def _require(self, space: str) -> int:
        dim = self._dim(space)
        if dim is None:
            raise StoreError(f"no vector space named {space!r} in {self.folder}")
        return dim

    def _dim(self, space: str) -> int | None:
        """The space's dimension, or None where there is no such space."""
        dim = self._dims.get(space)
        if dim is None:
            info = self.get_space(space)
            if info is None:
                return None
            dim = self._dims[space] = info.dim
        return dim

    def _bump(self, space: str) -> int:
        self._db.execute("UPDATE spaces SET generation = generation + 1 WHERE name = ?", (space,))
        return self._generation(space)

    def _generation(self, space: str) -> int:
        row = self._db.execute("SELECT generation FROM spaces WHERE name = ?", (space,)).fetchone()
        return int(row[0])

    def _synced_index(self, space: str, progress: Progress | None = None) -> VectorIndex:
        """The in-memory index, caught up with every write to the database. The saved index
        is loaded when this process has none or another process rebuilt it; one that another
        process only caught up and saved is not reloaded (catching up is faster)."""
        dim = self._require(space)
        generation = self._generation(space)
        index = self._indexes.get(space)
        stamp = VectorIndex.saved_stamp(self.folder, space)
        if index is None or (stamp is not None and stamp != self._stamps.get(space)):
            self._stamps[space] = stamp
            build = VectorIndex.saved_build(self.folder, space) if index else None
            if index is None or (build is not None and build[0] != index.build_id):
                saved = VectorIndex.load(self.folder, space, dim) if stamp else None
                if saved is not None and _newer(saved, index, generation):
                    index = self._swap(space, saved)
        if index is None:
            index = self._swap(space, self._first_index(space, dim, progress))
        if index.generation != generation:
            self._catch_up(space, index, generation)
        return index

    def _first_index(self, space: str, dim: int, progress: Progress | None) -> VectorIndex:
        """An index for a space without a usable saved one: new, never flushed, or its file
        lost. Only then may a search build one (a repair)."""
        if self.count(space) <= VectorIndex(dim).flat_max:
            return VectorIndex(dim)  # exact: filled by the catch-up
        if progress is None:
            _log.warning("building the search index of %r (no saved index)", space)
        return build_index(self.folder / DB_NAME, space, dim, progress)

    def _swap(self, space: str, index: VectorIndex) -> VectorIndex:
        old = self._indexes.get(space)
        if old is not None and old is not index:
            old.drop_coarse()
        self._indexes[space] = index
        return index

    def _catch_up(self, space: str, index: VectorIndex, generation: int) -> None:
        dim = self._dims[space]
        deleted = self._db.execute(
            f'SELECT id FROM "deletions_{space}" WHERE seq > ?', (index.generation,)
        ).fetchall()
        index.remove(np.array([r[0] for r in deleted], dtype=np.int64))
        cursor = self._db.execute(
            f'SELECT id, vector FROM "records_{space}" WHERE seq > ? ORDER BY seq',
            (index.generation,),
        )
        while rows := cursor.fetchmany(_CHUNK):
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            index.add(ids, np.stack([_vector(r[1], dim) for r in rows]))
        index.generation = generation

    def _allowed_ids(self, space: str, flt: SearchFilter | None) -> npt.NDArray[np.int64] | None:
        """Ids inside the filter's folders; None: no folder filter.
        Excluded ids are left to the index, which drops them without listing every record."""
        if flt is None or not flt.path_prefixes:
            return None
        return np.array(self._ids_in(space, flt.path_prefixes), dtype=np.int64)

    def _ids_in(self, space: str, folders: Sequence[str]) -> list[int]:
        """Sorted ids inside `folders`, by an indexed range query on the path."""
        flt = SearchFilter(path_prefixes=tuple(folders))
        key = stored_key(self._format)
        rows = []
        for prefix in folders:
            folder = prefix.rstrip("/")
            rows += self._db.execute(
                f'SELECT id, path FROM "records_{space}" '
                "WHERE path = ? OR (path >= ? AND path < ?)",
                (key(folder), key(folder + "/"), key(folder + "0")),
            ).fetchall()
        return sorted({i for i, path in rows if flt.accepts(i, path_text(path))})

    def _vectors(self, space: str, ids: list[int]) -> dict[int, FloatArray]:
        dim = self._dims[space]
        out: dict[int, FloatArray] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for record_id, blob in self._db.execute(
                f'SELECT id, vector FROM "records_{space}" WHERE id IN ({marks})', chunk
            ):
                out[record_id] = _vector(blob, dim)
        return out

    def _payloads(self, space: str, ids: set[int]) -> dict[int, Payload]:
        out: dict[int, Payload] = {}
        for chunk in _chunks(sorted(ids)):
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                f'SELECT id, {_PAYLOAD_COLUMNS} FROM "records_{space}" WHERE id IN ({marks})',
                chunk,
            ):
                out[row[0]] = _payload(row[1:])
        return out


def _quiet(done: int, total: int) -> None:
    """No progress shown (an index build in `flush()` is expected, not a repair)."""


def _newer(saved: VectorIndex, current: VectorIndex | None, generation: int) -> bool:
    """Whether a saved index should replace this process's: it is not ahead of the database
    and it is as recent as ours, or of another kind (rebuilt by another process)."""
    if saved.generation > generation:
        return False
    return current is None or saved.generation >= current.generation or saved.kind != current.kind


def _space_from_row(row: tuple[str, int, str, str, str, int]) -> SpaceInfo:
    name, dim, metric, model_spec, params, schema_version = row
    return SpaceInfo(name, int(dim), Metric(metric), model_spec, json.loads(params), schema_version)


def _record_row(record: Record, dim: int) -> tuple[object, ...]:
    vector = np.asarray(record.vector, dtype=np.float32).ravel()
    if vector.shape != (dim,):
        raise SpaceMismatchError(f"vector of dimension {vector.shape[0]} in a space of dim {dim}")
    p = record.payload
    return (
        record.id,
        path_key(p.path),
        p.content_hash,
        p.size,
        p.mtime_ns,
        p.width,
        p.height,
        p.taken_at,
        vector.tobytes(),
    )


def _payload(row: Sequence[Any]) -> Payload:
    """A payload from its columns (`_PAYLOAD_COLUMNS`); the path comes back as a lossless str."""
    return Payload(path_text(row[0]), *row[1:])


def _vector(blob: bytes, dim: int) -> FloatArray:
    return np.frombuffer(blob, dtype=np.float32, count=dim)


def _chunks(items: list[int], size: int = 900) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
