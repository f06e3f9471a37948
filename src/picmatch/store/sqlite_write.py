"""Write transactions of the SQLite store, and what their failures tell the user."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from picmatch.errors import StoreError, disk_full_message, read_only_message


class Transaction:
    """`BEGIN IMMEDIATE` … `COMMIT`, rolled back on any error; SQLite errors become StoreError.

    SQLite rolls a transaction back by itself on some errors (a full disk, for one), so the
    rollback here only runs while a transaction is still open, and never hides the first error.
    """

    def __init__(self, db: sqlite3.Connection, folder: Path) -> None:
        self._db = db
        self._folder = folder

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise write_error(self._folder, exc) from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                self._rollback()
                raise write_error(self._folder, err) from err
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise write_error(self._folder, exc) from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            # If even that fails the connection is unusable; the first error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")


def write_error(folder: Path, exc: sqlite3.Error) -> StoreError:
    """A StoreError that says what happened and what to do."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return StoreError(disk_full_message(folder))
    if code == sqlite3.SQLITE_READONLY or "readonly" in str(exc):
        return StoreError(read_only_message(folder))
    return StoreError(f"cannot write to the store in {folder}: {exc}")
