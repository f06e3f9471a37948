"""The SQLite store's format version is read on open: older stores migrate, newer ones refuse."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from picmatch.errors import FormatError
from picmatch.store.base import SearchFilter
from picmatch.store.sqlite import SqliteStore
from picmatch.store.sqlite_schema import DB_NAME, STORE_FORMAT

_LEGACY = """
CREATE TABLE spaces (name TEXT PRIMARY KEY, dim INTEGER NOT NULL, metric TEXT NOT NULL,
    model_spec TEXT NOT NULL, params TEXT NOT NULL, schema_version INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE "records_s" (id INTEGER PRIMARY KEY, path TEXT NOT NULL, content_hash TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, width INTEGER NOT NULL,
    height INTEGER NOT NULL, taken_at REAL, seq INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX "records_s_seq" ON "records_s" (seq);
CREATE INDEX "records_s_path" ON "records_s" (path);
CREATE TABLE "deletions_s" (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX "deletions_s_seq" ON "deletions_s" (seq);
INSERT INTO spaces VALUES ('s', 2, 'cosine', 'm', '{}', 1, 2);
"""


def _legacy_store(folder: Path) -> None:
    """A store as picmatch wrote it before format versions: paths as TEXT, user_version 0."""
    folder.mkdir()
    db = sqlite3.connect(folder / DB_NAME)
    db.executescript(_LEGACY)
    vector = np.array([1, 0], np.float32).tobytes()
    rows = [(1, "/photos/a/x.jpg"), (2, "/photos/ab/y.jpg"), (3, "/photos/é/z.jpg")]
    db.executemany("INSERT INTO records_s VALUES (?, ?, 'h', 1, 1, 1, 1, NULL, 1, ?)", [
        (i, path, vector) for i, path in rows
    ])  # fmt: skip
    db.commit()
    db.close()


def test_an_old_store_is_migrated_on_open(tmp_path: Path) -> None:
    _legacy_store(tmp_path / "store")
    store = SqliteStore(tmp_path / "store")
    query = np.array([1, 0], np.float32)
    hits = store.search("s", query, 5, SearchFilter(("/photos/a",)))[0]
    assert [h.payload.path for h in hits] == ["/photos/a/x.jpg"]
    hits = store.search("s", query, 5, SearchFilter(("/photos/é",)))[0]
    assert [h.payload.path for h in hits] == ["/photos/é/z.jpg"]
    store.close()
    db = sqlite3.connect(tmp_path / "store" / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == STORE_FORMAT
    assert {r[0] for r in db.execute("SELECT typeof(path) FROM records_s")} == {"blob"}
    db.close()


def test_a_newer_store_is_refused_with_what_to_do(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "store").close()
    db = sqlite3.connect(tmp_path / "store" / DB_NAME)
    db.execute(f"PRAGMA user_version = {STORE_FORMAT + 1}")
    db.close()
    with pytest.raises(FormatError, match=r"newer picmatch.*upgrade picmatch"):
        SqliteStore(tmp_path / "store")
