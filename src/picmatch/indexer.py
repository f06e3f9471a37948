"""Incremental indexing: diff a scan against the store, then embed only what is new.

1. Scan the roots. A file whose size and mtime match its record is unchanged.
2. Hash the rest. Same hash as its own record: only the mtime moved. Same hash as any other
   record: reuse that vector (a move, a rename or a copy); nothing is decoded or embedded.
   If that other record's file no longer exists, this is a move and the old record goes,
   even when it lay outside the roots being indexed (a whole folder moved elsewhere).
3. Decode the remaining files in worker processes while the main process runs the model on
   the previous batch, and upsert every batch as it is done.

A library with no records yet has nothing to reuse, so step 2 is skipped and each worker hashes
the file it decodes, from the same open descriptor, in 1 MiB chunks after the decode (the bytes
are in the page cache by then): no file is ever held whole in memory.

Every write is a committed transaction, so a killed run loses at most the batch in flight and a
re-run finishes the job: it starts again from the diff, with no duplicates.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Container, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from picmatch._sys import available_cpus
from picmatch.decode_pool import DecodeResult, parallel_decode
from picmatch.errors import ImageDecodeError, PicmatchError
from picmatch.images.decode import DecodedImage
from picmatch.images.files import content_hash
from picmatch.images.scan import FileEntry, scan
from picmatch.models.base import Embedder, RGBImage
from picmatch.store.base import Payload, Record, VectorStore, path_in_folder


class Phase(StrEnum):
    WAIT = "wait"  # for another run that writes to the same library
    SCAN = "scan"
    HASH = "hash"
    EMBED = "embed"
    INDEX = "index"  # the store's search index, updated or rebuilt at the end of a run
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    done: int
    total: int  # 0 while unknown


ProgressCallback = Callable[[Progress], None]
PixelsCallback = Callable[[list[tuple[str, RGBImage]]], None]


@dataclass
class IndexReport:
    added: int = 0
    unchanged: int = 0
    updated: int = 0
    removed: int = 0
    moved: int = 0
    embedded: int = 0  # files that went through the model (the rest reused a stored vector)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0
    embed_seconds: float = 0.0  # wall time of the decode + embed phase

    @property
    def total_indexed(self) -> int:
        return self.added + self.unchanged + self.updated + self.moved


def record_id(path: str) -> int:
    """Stable 63-bit id of a path, the same in every store."""
    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True)
class _Work:
    entry: FileEntry
    content_hash: str | None  # None: the decode worker hashes the bytes it reads
    replaces: bool  # the path already had a record (with other bytes)

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def wants_hash(self) -> bool:
        return self.content_hash is None


class Indexer:
    """One indexing run of `roots` into `space` of `store` with `embedder`."""

    def __init__(
        self,
        store: VectorStore,
        space: str,
        embedder: Embedder,
        *,
        workers: int | None = None,
        batch_size: int = 8,
        max_pixels: int,
        progress: ProgressCallback | None = None,
        on_pixels: PixelsCallback | None = None,
        exclude: Sequence[Path] = (),
    ) -> None:
        self.store = store
        self.exclude = exclude  # folders never scanned (the library's own)
        self.on_pixels = on_pixels  # sees (content hash, model input) of each embedded image
        self.space = space
        self.embedder = embedder
        self.workers = workers or available_cpus()
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self._progress = progress or (lambda p: None)
        self.report = IndexReport()
        self.seen: dict[str, FileEntry] = {}
        self._moves: dict[str, int] = {}  # new path -> id of the record it moved from

    def run(
        self, roots: Sequence[Path], scanned: dict[str, FileEntry] | None = None
    ) -> IndexReport:
        """Index `roots`; `scanned` is the scan of another space's run over the same roots
        (several spaces share one scan). The scan used is kept in `self.seen`."""
        known = {p.path: (i, p) for i, p in self.store.iter_payloads(self.space)}
        seen = self.seen = self._scan(roots) if scanned is None else scanned
        gone = {
            path: known[path]
            for path in known
            if path not in seen and any(path_in_folder(path, str(r)) for r in roots)
        }
        work = self._classify(seen, known, gone)
        self._remove(gone)
        self._embed_all(work)
        self._progress(Progress(Phase.DONE, 1, 1))
        return self.report

    # step 1: scan

    def _scan(self, roots: Sequence[Path]) -> dict[str, FileEntry]:
        seen: dict[str, FileEntry] = {}
        for entry in scan(roots, on_error=self._skip, exclude=self.exclude):
            seen[entry.path] = entry
            if len(seen) % 1000 == 0:
                self._progress(Progress(Phase.SCAN, len(seen), 0))
        self._progress(Progress(Phase.SCAN, len(seen), len(seen)))
        return seen

    # step 2: classify, reusing vectors by content hash

    def _classify(
        self,
        seen: dict[str, FileEntry],
        known: dict[str, tuple[int, Payload]],
        gone: dict[str, tuple[int, Payload]],
    ) -> list[_Work]:
        changed = []
        for path, entry in seen.items():
            old = known.get(path)
            if old and (old[1].size, old[1].mtime_ns) == (entry.size, entry.mtime_ns):
                self.report.unchanged += 1
            else:
                changed.append(entry)
        if not known:
            return [_Work(entry, None, replaces=False) for entry in sorted_entries(changed)]
        by_hash = {p.content_hash: (i, path) for path, (i, p) in known.items()}
        work: list[_Work] = []
        reuse: list[tuple[FileEntry, str, int]] = []
        moved_from: set[str] = set()
        for entry, digest in self._hash_all(changed):
            old = known.get(entry.path)
            if old and old[1].content_hash == digest:
                reuse.append((entry, digest, old[0]))
                self.report.unchanged += 1
            elif digest in by_hash:
                source_id, source = by_hash[digest]
                reuse.append((entry, digest, source_id))
                if old is None and source not in moved_from and _moved_away(source, seen, gone):
                    moved_from.add(source)
                    gone[source] = known[source]
                    self._moves[entry.path] = source_id
                    self.report.moved += 1
                else:
                    self._count_new(old is not None)
            else:
                work.append(_Work(entry, digest, replaces=old is not None))
        self._write_reused(reuse)
        return sorted(work, key=lambda w: w.entry.path)

    def _hash_all(self, entries: list[FileEntry]) -> Iterator[tuple[FileEntry, str]]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for start in range(0, len(entries), _HASH_WINDOW):
                window = entries[start : start + _HASH_WINDOW]
                for entry, digest in zip(window, pool.map(_try_hash, window), strict=True):
                    if isinstance(digest, ImageDecodeError):
                        self._skip(entry.path, digest.reason)
                    else:
                        yield entry, digest
                self._progress(Progress(Phase.HASH, start + len(window), len(entries)))

    def _write_reused(self, reuse: list[tuple[FileEntry, str, int]]) -> None:
        for start in range(0, len(reuse), 512):
            chunk = reuse[start : start + 512]
            sources = {r.id: r for r in self.store.get(self.space, [src for _, _, src in chunk])}
            records = [
                Record(
                    record_id(entry.path),
                    sources[src].vector,
                    _payload(entry, digest, sources[src].payload),
                )
                for entry, digest, src in chunk
                if src in sources
            ]
            # A move writes the new record and drops the old one in one transaction: a run
            # stopped in between must not leave a ghost at the old path.
            moved = [self._moves[e.path] for e, _, _ in chunk if e.path in self._moves]
            self.store.upsert(self.space, records, replacing=moved)

    def _remove(self, gone: dict[str, tuple[int, Payload]]) -> None:
        moved = set(self._moves.values())  # dropped with the records that replaced them
        self.store.delete(self.space, [i for i, _ in gone.values() if i not in moved])
        self.report.removed += len(gone) - self.report.moved

    # step 3: decode in parallel, embed in batches

    def _embed_all(self, work: list[_Work]) -> None:
        if not work:
            return
        started = time.perf_counter()
        batch: list[tuple[_Work, DecodedImage]] = []
        self._progress(Progress(Phase.EMBED, 0, len(work)))
        with closing(self._decoded(work)) as results:  # a stop here shuts the workers down
            for done, (item, decoded) in enumerate(results, 1):
                if decoded is not None:
                    batch.append((item, decoded))
                if len(batch) >= self.batch_size:
                    self._embed_batch(batch)
                    batch = []
                if done % 8 == 0 or done == len(work):
                    self._progress(Progress(Phase.EMBED, done, len(work)))
        self._embed_batch(batch)
        self.report.embed_seconds = time.perf_counter() - started

    def _decoded(self, work: list[_Work]) -> Generator[tuple[_Work, DecodedImage | None]]:
        """Decode results in completion order; a failed file is reported, yielded as None."""
        pre = self.embedder.preprocess
        decoding = parallel_decode(work, pre, self.max_pixels, self.workers)
        with closing(decoding):
            yield from self._checked(decoding)

    def _checked(
        self, decoding: Iterator[tuple[_Work, DecodeResult]]
    ) -> Iterator[tuple[_Work, DecodedImage | None]]:
        for item, result in decoding:
            if isinstance(result, tuple):
                decoded, digest = result
                yield _Work(item.entry, digest, item.replaces), decoded
                continue
            if isinstance(result, str):
                self._skip(item.entry.path, result)
                if item.replaces:  # the file changed into something unreadable: drop the old
                    self.store.delete(self.space, [record_id(item.entry.path)])
                    self.report.removed += 1
                yield item, None
            else:
                yield item, result

    def _embed_batch(self, batch: list[tuple[_Work, DecodedImage]]) -> None:
        if not batch:
            return
        try:
            vectors = self.embedder.embed_images([d.pixels for _, d in batch])
        except PicmatchError as exc:
            for item, _ in batch:
                self._skip(item.entry.path, f"model failed: {exc}")
            return
        records = []
        for (item, decoded), vector in zip(batch, vectors, strict=True):
            p = Payload(
                item.entry.path,
                item.content_hash or "",
                item.entry.size,
                item.entry.mtime_ns,
                decoded.width,
                decoded.height,
                decoded.taken_at,
            )
            records.append(Record(record_id(item.entry.path), vector, p))
            self._count_new(item.replaces)
        self.store.upsert(self.space, records)
        self.report.embedded += len(records)
        if self.on_pixels is not None:
            self.on_pixels([(item.content_hash or "", decoded.pixels) for item, decoded in batch])

    def _count_new(self, replaces: bool) -> None:
        if replaces:
            self.report.updated += 1
        else:
            self.report.added += 1

    def _skip(self, path: str, reason: str) -> None:
        self.report.skipped.append((path, reason))


def _moved_away(source: str, seen: Container[str], gone: Container[str]) -> bool:
    """The record at `source` was moved if its file is gone: missing from the scanned roots,
    or, outside them (a whole folder moved to a new root), missing on disk."""
    return source in gone or (source not in seen and not os.path.lexists(source))


def _payload(entry: FileEntry, digest: str, source: Payload) -> Payload:
    return Payload(
        entry.path, digest, entry.size, entry.mtime_ns, source.width, source.height, source.taken_at
    )


_HASH_WINDOW = 2048


def sorted_entries(entries: list[FileEntry]) -> list[FileEntry]:
    return sorted(entries, key=lambda e: e.path)


def _try_hash(entry: FileEntry) -> str | ImageDecodeError:
    try:
        return content_hash(entry.path)
    except ImageDecodeError as exc:
        return exc
