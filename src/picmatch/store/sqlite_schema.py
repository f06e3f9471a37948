"""The SQLite store's file format: tables, format version, migrations, and how paths are kept.

The format version lives in SQLite's `user_version`. Opening a store written by a newer picmatch
is an error that says to upgrade; an older store is migrated in one transaction on open.

Paths are stored as BLOBs of their file-system bytes (UTF-8, with undecodable bytes kept through
Python's ``surrogateescape``), so any name Linux allows round-trips exactly. Byte order is
code-point order for UTF-8, so folder range queries work on the bytes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

from picmatch.errors import FormatError

DB_NAME: Final = "picmatch.db"
STORE_FORMAT: Final = 2
"""0: paths as TEXT (picmatch before format versions); 1: paths as BLOBs; 2: a `roots` table
(the library's indexed folders, which lived in ``library.json`` before)."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spaces (
    name TEXT PRIMARY KEY,
    dim INTEGER NOT NULL,
    metric TEXT NOT NULL,
    model_spec TEXT NOT NULL,
    params TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS roots (path BLOB PRIMARY KEY);
"""

SPACE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS "records_{s}" (
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    taken_at REAL,
    seq INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS "records_{s}_seq" ON "records_{s}" (seq);
CREATE INDEX IF NOT EXISTS "records_{s}_path" ON "records_{s}" (path);
CREATE TABLE IF NOT EXISTS "deletions_{s}" (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS "deletions_{s}_seq" ON "deletions_{s}" (seq);
"""


def path_key(path: str) -> bytes:
    """How a path is stored: its file-system bytes."""
    return path.encode("utf-8", "surrogateescape")


def path_text(value: bytes | str) -> str:
    """A stored path back as the `str` Python's `os` functions use (lossless)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def store_format(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def check_format(version: int, where: object) -> None:
    if version > STORE_FORMAT:
        raise FormatError(
            f"the store in {where} was written by a newer picmatch (store format {version}; "
            f"this one reads up to {STORE_FORMAT}): upgrade picmatch (pip install -U picmatch)"
        )


def is_current(db: sqlite3.Connection, where: object) -> bool:
    """Whether the store has its tables at the current format (a read; no write needed)."""
    version = store_format(db)
    check_format(version, where)
    return version == STORE_FORMAT and _has_tables(db)


def create_or_migrate(db: sqlite3.Connection, where: object) -> None:
    """Inside a write transaction: create a new store's tables, or bring an old one up to date.
    Statements run one by one (``executescript`` would commit the transaction)."""
    fresh = not _has_tables(db)
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    version = STORE_FORMAT if fresh else store_format(db)
    check_format(version, where)
    if version < 1:
        _paths_to_blobs(db)
    db.execute(f"PRAGMA user_version = {STORE_FORMAT}")


def create_space_tables(db: sqlite3.Connection, name: str) -> None:
    for statement in SPACE_SCHEMA.format(s=name).split(";"):
        if statement.strip():
            db.execute(statement)


def _paths_to_blobs(db: sqlite3.Connection) -> None:
    for (name,) in db.execute("SELECT name FROM spaces").fetchall():
        db.execute(
            f"UPDATE \"records_{name}\" SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text'"
        )


def _has_tables(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spaces'")
    return row.fetchone() is not None


def connect(folder: Path) -> tuple[sqlite3.Connection, bool]:
    """The store's database, and whether it is read-only.

    A store the user may not write (a read-only mount, another user's library) opens read-only,
    with no write at all on open: not even the WAL's shared-memory file, which cannot be made in
    a folder one may not write (then SQLite's `immutable` mode reads the database file alone).
    """
    path = folder / DB_NAME
    if path.exists() and not (os.access(folder, os.W_OK) and os.access(path, os.W_OK)):
        return connect_read_only(path), True
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db, False


def connect_read_only(path: Path) -> sqlite3.Connection:
    uri = path.absolute().as_uri()
    for mode in ("mode=ro", "mode=ro&immutable=1"):
        db = sqlite3.connect(
            f"{uri}?{mode}", uri=True, check_same_thread=False, isolation_level=None, timeout=60
        )
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
            if "immutable" in mode:
                raise
    raise AssertionError("unreachable")


def stored_key(version: int) -> Callable[[str], bytes | str]:
    """How a path is compared in SQL: bytes, or text in a format-0 store read without upgrading."""
    return path_key if version >= 1 else str
