"""Cheap per-image evidence for duplicate finding, kept beside the store: perceptual hashes.

Hashes are keyed by content hash, so copies, moves and renames share one entry, and they live in
`evidence.db` in the library folder whatever the vector store is. The indexer hands over the
pixels it already decoded for the model (when the model squashes to 224 px, the same pixels the
hash wants), so a new image costs one 32x32 DCT; images indexed before are hashed by the next
`index` or `dupes` run, by decoding them once, never by re-embedding.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from picmatch.errors import ImageDecodeError, StoreError
from picmatch.images.decode import load_for_model
from picmatch.images.phash import phash_pair
from picmatch.models.base import Preprocess, ResizeMode
from picmatch.store.sqlite_write import Transaction

DB_NAME = "evidence.db"
HASH_INPUT = Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), ResizeMode.SQUASH)
_SIGN = 1 << 63


def pixels_fit_for_hash(preprocess: Preprocess) -> bool:
    """Whether a model's input pixels are exactly what the hash is computed from."""
    return (preprocess.size, preprocess.resize) == (HASH_INPUT.size, HASH_INPUT.resize)


def hash_file(path: str, max_pixels: int) -> tuple[int, int] | None:
    """(hash, mirror hash) of an image file; None if it cannot be read. Runs in workers."""
    try:
        return phash_pair(load_for_model(path, HASH_INPUT, max_pixels=max_pixels).pixels)
    except (ImageDecodeError, MemoryError, OSError):
        return None


class EvidenceCache:
    """content hash -> (pHash, mirror pHash), in SQLite."""

    def __init__(self, folder: Path) -> None:
        try:
            self._db = sqlite3.connect(
                folder / DB_NAME, check_same_thread=False, isolation_level=None, timeout=60
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS phash "
                "(content_hash TEXT PRIMARY KEY, hash INTEGER NOT NULL, mirror INTEGER NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {folder / DB_NAME}: {exc}") from exc
        self._folder = folder
        self._lock = threading.Lock()

    def put(self, items: Iterable[tuple[str, int, int]]) -> None:
        rows = [(digest, _signed(h), _signed(m)) for digest, h, m in items if digest]
        if not rows:
            return
        with self._lock, Transaction(self._db, self._folder):
            self._db.executemany("INSERT OR REPLACE INTO phash VALUES (?, ?, ?)", rows)

    def put_pixels(self, items: Sequence[tuple[str, npt.NDArray[np.uint8]]]) -> None:
        """Hash already decoded model inputs (only valid when `pixels_fit_for_hash`)."""
        self.put((digest, *phash_pair(pixels)) for digest, pixels in items)

    def get(self, digests: Iterable[str]) -> dict[str, tuple[int, int]]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, tuple[int, int]] = {}
        with self._lock:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for digest, h, m in self._db.execute(
                    f"SELECT content_hash, hash, mirror FROM phash WHERE content_hash IN ({marks})",
                    chunk,
                ):
                    found[digest] = (_unsigned(h), _unsigned(m))
        return found

    def fill(self, files: Sequence[tuple[str, str]], max_pixels: int, workers: int) -> int:
        """Hash the (content hash, path) files missing from the cache; returns how many."""
        known = self.get(digest for digest, _ in files)
        todo = list({d: p for d, p in files if d and d not in known}.items())
        if not todo:
            return 0
        paths = [path for _, path in todo]
        limits = [max_pixels] * len(paths)
        if workers > 1 and len(paths) >= 8:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(hash_file, paths, limits, chunksize=16))
        else:
            results = [hash_file(p, max_pixels) for p in paths]
        self.put((d, *r) for (d, _), r in zip(todo, results, strict=True) if r is not None)
        return sum(r is not None for r in results)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= _SIGN else value


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
