"""Builds a space's `VectorIndex` from a consistent snapshot of the SQLite database.

It reads through its own connection inside one read transaction (WAL: writers go on, and
the store's searches keep using the old index until the new one is swapped in), streams the
vectors in chunks (memory stays bounded: at 1M x 1280 the float32 vectors are 5 GB, the
IVF-SQ8 codes 1.3 GB), and returns an index that reflects the snapshot's generation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from picmatch.store import ivf_sq8
from picmatch.store.base import FloatArray
from picmatch.store.sqlite_schema import connect_read_only
from picmatch.store.vector_index import EXACT, Chunks, Progress, VectorIndex

CHUNK = 4096
SEED = 20240601


def build_index(
    db_path: Path, space: str, dim: int, progress: Progress | None = None
) -> VectorIndex:
    """A new index of the kind the space's size calls for, with every live record."""
    db = connect_read_only(db_path)  # it only reads, so a read-only library works too
    try:
        db.execute("BEGIN")
        (generation,) = db.execute(
            "SELECT generation FROM spaces WHERE name = ?", (space,)
        ).fetchone()
        ids = np.array(
            [r[0] for r in db.execute(f'SELECT id FROM "records_{space}"')], dtype=np.int64
        )
        total = len(ids)
        kind = VectorIndex(dim).wanted_kind(total)
        if kind == EXACT:
            index = VectorIndex(dim)
            for chunk_ids, vectors in _chunks(db, space, dim):
                index.add(chunk_ids, vectors)
                if progress is not None:
                    progress(index.live_count, total)
        else:
            sample_ids, sample = _sample(db, space, dim, ids)
            chunks = _chunks(db, space, dim)
            index = VectorIndex.build_ivf(dim, sample_ids, sample, chunks, total, progress)
        index.generation = int(generation)
        db.execute("COMMIT")
        return index
    finally:
        db.close()


def _sample(
    db: sqlite3.Connection, space: str, dim: int, ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Random live records (ids, vectors) to calibrate nprobe and train the lists."""
    wanted = ivf_sq8.lists_for(len(ids)) * ivf_sq8.TRAIN_PER_LIST + ivf_sq8.CALIBRATION_QUERIES
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(ids, size=min(wanted, len(ids)), replace=False)
    found: dict[int, FloatArray] = {}
    for start in range(0, len(chosen), 900):
        part = chosen[start : start + 900].tolist()
        marks = ",".join("?" * len(part))
        for record_id, blob in db.execute(
            f'SELECT id, vector FROM "records_{space}" WHERE id IN ({marks})', part
        ):
            found[record_id] = np.frombuffer(blob, np.float32, count=dim)
    kept = np.array([i for i in chosen.tolist() if i in found], np.int64)
    return kept, np.stack([found[i] for i in kept.tolist()]).astype(np.float32)


def _chunks(db: sqlite3.Connection, space: str, dim: int) -> Chunks:
    return _iter_chunks(db, space, dim)


def _iter_chunks(
    db: sqlite3.Connection, space: str, dim: int
) -> Iterator[tuple[npt.NDArray[np.int64], FloatArray]]:
    cursor = db.execute(f'SELECT id, vector FROM "records_{space}"')
    while rows := cursor.fetchmany(CHUNK):
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, dim)
        yield ids, vectors
