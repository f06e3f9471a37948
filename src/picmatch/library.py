"""The facade: everything a user does goes through `Library`. CLI and HTTP API are thin adapters.

A library is a folder holding `library.json` (model, store URL, pipeline parameters) and, by
default, the embedded store in `store/`, which also holds the indexed roots. Writers (index,
remove) take the library's writer lock, so concurrent runs serialise.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import numpy as np

from picmatch._sys import available_cpus, path_from_display
from picmatch.config import DEFAULT_MAX_PIXELS, DEFAULT_MODEL, Settings, default_cache_dir
from picmatch.errors import ConfigError, LibraryNotFoundError, NotIndexedError, StoreError
from picmatch.evidence import EvidenceCache
from picmatch.evidence import pixels_fit_for_hash as hashable
from picmatch.indexer import Indexer, IndexReport, Phase, Progress, ProgressCallback, record_id
from picmatch.manifest import needs_upgrade, new_manifest, read_manifest, upgrade_manifest
from picmatch.models.base import Embedder, FloatArray, RGBImage
from picmatch.results import DupeReport, Hit, ImageInfo, LibraryStats, hit_of, info_of
from picmatch.store.base import (
    Metric,
    SearchFilter,
    SpaceInfo,
    VectorStore,
)
from picmatch.writer_lock import writer_lock

if TYPE_CHECKING:
    from picmatch.dupe_actions import DupeActions

MAX_K = 10_000

ImageQuery = str | os.PathLike[str] | bytes | BinaryIO | RGBImage


def space_name(model_spec: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", model_spec.lower()).strip("_")[:64] or "default"


def open_library(
    path: str | os.PathLike[str] | None = None,
    *,
    create: bool = True,
    model: str | None = None,
    store: str | None = None,
    store_token: str | None = None,
    params: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Library:
    """Open the library in `path` (default: the per-user data folder), creating it if allowed.

    `params` are the pipeline parameters a new library records (default: the model's current
    `default_params`); an existing library keeps its own, and asking for others is an error.
    `store` is the store URL of a new library (default: SQLite inside it); `store_token` holds
    the credentials of a networked store, which never go into the URL or `library.json`.
    """
    if path is None:
        from picmatch.config import default_library_dir

        path = default_library_dir()
    folder = Path(path).expanduser().absolute()
    manifest = read_manifest(folder)
    if manifest is None:
        if not create:
            raise LibraryNotFoundError(
                f"no picmatch library in {folder}; create one with: picmatch index FOLDER "
                f"--library {folder}"
            )
        manifest = new_manifest(folder, model or DEFAULT_MODEL, store, params)
    elif model is not None and model != manifest["model"]:
        raise ConfigError(
            f"the library in {folder} was built with {manifest['model']}, not {model}; "
            "use another --library folder for another model"
        )
    elif params is not None and dict(params) != manifest.get("params", {}):
        raise ConfigError(
            f"the library in {folder} was built with the parameters {manifest.get('params', {})}"
            f", not {dict(params)}; use another --library folder for other parameters"
        )
    return Library(
        folder,
        manifest,
        cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
        workers=workers,
        batch_size=batch_size,
        max_pixels=max_pixels,
        store_token=store_token,
    )


def open_with_settings(settings: Settings, *, create: bool) -> Library:
    """`open_library` with everything taken from `settings` (what the CLI and server do)."""
    return open_library(
        settings.library,
        create=create,
        model=settings.model if create else None,
        store=settings.store,
        store_token=settings.store_token,
        cache_dir=settings.cache_dir,
        workers=settings.workers,
        batch_size=settings.batch_size,
        max_pixels=settings.max_pixels,
    )


class Library:
    """An image library: index folders, search by image or vector, remove, report stats."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        *,
        cache_dir: Path,
        workers: int | None,
        batch_size: int | None,
        max_pixels: int,
        store_token: str | None = None,
    ) -> None:
        from picmatch.store.registry import open_store

        self.path = folder
        self._manifest = manifest
        self.cache_dir = cache_dir
        self.workers = workers
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.store: VectorStore = open_store(
            manifest["store"] or folder / "store", token=store_token
        )
        self.space = space_name(self.model_spec)
        self._embedder: Embedder | None = None
        self._evidence: EvidenceCache | None = None
        self._lock = threading.Lock()
        if needs_upgrade(manifest):
            self._upgrade_manifest()

    # properties

    @property
    def model_spec(self) -> str:
        return str(self._manifest["model"])

    @property
    def params(self) -> dict[str, str]:
        return dict(self._manifest.get("params", {}))

    @property
    def roots(self) -> tuple[Path, ...]:
        """The indexed folders, read from the store each time: another process may add some."""
        found = self.store.roots()
        found += [r for r in self._manifest.get("roots", []) if r not in found]  # not upgraded
        return tuple(Path(r) for r in found)

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (searching by an indexed image does not need it)."""
        with self._lock:
            if self._embedder is None:
                from picmatch.models.registry import load_embedder

                options: dict[str, Any] = dict(self.params)
                self._embedder = load_embedder(
                    self.model_spec, cache_dir=self.cache_dir / "models", **options
                )
            return self._embedder

    # indexing

    def index(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Index files and folders; re-runs only touch what changed. Returns what happened."""
        roots = [Path(p).expanduser().absolute() for p in paths]
        missing = [str(r) for r in roots if not r.exists()]
        if missing:
            raise NotIndexedError(f"not found: {', '.join(missing)}; check the path and try again")
        started = time.perf_counter()
        with writer_lock(self.path, on_wait=lambda: _waiting(progress)):
            report = self._index_locked(roots, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _index_locked(self, roots: list[Path], progress: ProgressCallback | None) -> IndexReport:
        self._ensure_space()
        self.store.add_roots([str(r) for r in roots])
        indexer = Indexer(
            self.store,
            self.space,
            self.embedder,
            workers=self.workers,
            batch_size=self.batch_size or _best_batch(self.embedder),
            max_pixels=self.max_pixels,
            progress=progress,
            on_pixels=self.evidence.put_pixels if hashable(self.embedder.preprocess) else None,
        )
        report = indexer.run(roots)
        if report.moved:
            self._forget_emptied_roots()
        self._fill_evidence()
        self.store.flush()
        return report

    def remove(self, paths: Sequence[str | os.PathLike[str]]) -> int:
        """Drop files and folders (and roots) from the library; returns the number of images."""
        targets = [str(Path(p).expanduser().absolute()) for p in paths]
        flt = SearchFilter(path_prefixes=tuple(targets))
        with writer_lock(self.path):
            ids = self.store.ids_in_folders(self.space, targets)
            self.store.delete(self.space, ids)
            self.store.remove_roots([r for r in self.store.roots() if flt.accepts(-1, r)])
            self.store.flush()
        return len(ids)

    # searching

    def search(
        self,
        query: ImageQuery,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        exclude: Collection[int] = (),
    ) -> list[Hit]:
        """Most similar indexed images to an image file, indexed path, bytes or RGB array.

        `folders` keeps only hits inside them; `exclude` drops the images with these ids.
        """
        vector = self.query_vector(query)
        return self.search_vector(vector, k, min_score=min_score, folders=folders, exclude=exclude)

    def search_id(
        self,
        image_id: int,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
    ) -> list[Hit]:
        records = self._require_space_records([image_id])
        return self.search_vector(records[0], k, min_score=min_score, folders=folders)

    def search_vector(
        self,
        vector: FloatArray,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        exclude: Collection[int] = (),
    ) -> list[Hit]:
        _check_k(k)
        prefixes = tuple(str(Path(f).expanduser().absolute()) for f in folders)
        flt = SearchFilter(prefixes, frozenset(exclude)) if prefixes or exclude else None
        hits = self.store.search(self.space, np.atleast_2d(vector), k, flt)[0]
        floor = -1.0 if min_score is None else min_score
        return [hit_of(h) for h in hits if h.score >= floor]

    def query_vector(self, query: ImageQuery) -> FloatArray:
        """The vector of a query: the stored one for an unchanged indexed file, else embedded."""
        if isinstance(query, str | os.PathLike):
            stored = self._stored_vector(Path(query).expanduser().absolute())
            if stored is not None:
                return stored
        from picmatch.images.decode import load_for_model

        embedder = self.embedder
        if isinstance(query, np.ndarray):
            pixels = query
        else:
            pixels = load_for_model(query, embedder.preprocess, max_pixels=self.max_pixels).pixels
        vector: FloatArray = embedder.embed_images([pixels])[0]
        return vector

    # duplicates

    def duplicates(
        self,
        tier: str = "copy",
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        keep_in: Sequence[str | os.PathLike[str]] = (),
    ) -> DupeReport:
        """Near-duplicate groups (tier exact, copy or similar), keeper first; changes nothing.
        Skips the review folders of earlier moves; members inside `keep_in` are kept."""
        from picmatch.dupe_finder import DupeScope, find_duplicates

        skip = self.dupe_actions().review_folders()
        scope = DupeScope.of(self.roots, folders, skip, keep_in)
        workers = self.workers or available_cpus()
        return find_duplicates(
            self.store, self.space, self.evidence, scope, tier, min_score, self.max_pixels, workers
        )

    def dupe_actions(self) -> DupeActions:
        """Reversible moves and hardlinks of duplicates (`move`, `link`, `undo`)."""
        from picmatch.dupe_actions import DupeActions

        return DupeActions(self.store, self.space, self.path, [str(r) for r in self.roots])

    @property
    def evidence(self) -> EvidenceCache:
        with self._lock:
            if self._evidence is None:
                self._evidence = EvidenceCache(self.path)
            return self._evidence

    # lookups and stats

    def image_info(self, image_id: int) -> ImageInfo | None:
        records = self.store.get(self.space, [image_id])
        if not records:
            return None
        return info_of(records[0].id, records[0].payload)

    def find(self, path: str | os.PathLike[str]) -> ImageInfo | None:
        """The indexed image at `path`, also as `display_path` shows a name that is not UTF-8."""
        full = str(Path(path).expanduser().absolute())
        found = self.image_info(record_id(full))
        if found is None and "\\x" in full:
            found = self.image_info(record_id(path_from_display(full)))
        return found

    def count(self) -> int:
        return self.store.count(self.space)

    def stats(self) -> LibraryStats:
        return LibraryStats(
            path=str(self.path),
            model=self.model_spec,
            store=self.store.url,
            images=self.count(),
            store_bytes=self.store.size_bytes(),
            roots=tuple(str(r) for r in self.roots),
            params=self.params,
        )

    def close(self) -> None:
        self.store.close()
        if self._evidence is not None:
            self._evidence.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # internals

    def _ensure_space(self) -> None:
        embedder = self.embedder
        self.store.ensure_space(
            SpaceInfo(self.space, embedder.dim, Metric.COSINE, self.model_spec, self.params)
        )

    def _stored_vector(self, path: Path) -> FloatArray | None:
        records = self.store.get(self.space, [record_id(str(path))])
        if not records:
            return None
        try:
            st = path.stat()
        except OSError:
            return records[0].vector  # indexed, moved away since: the stored vector still holds
        payload = records[0].payload
        if (payload.size, payload.mtime_ns) != (st.st_size, st.st_mtime_ns):
            return None
        return records[0].vector

    def _require_space_records(self, ids: list[int]) -> list[FloatArray]:
        records = self.store.get(self.space, ids)
        if len(records) != len(ids):
            raise NotIndexedError(f"no image with id {ids[0]} in this library")
        return [r.vector for r in records]

    def _forget_emptied_roots(self) -> None:
        """Drop roots that no longer exist and hold no records (their folder was moved away)."""
        missing = [r for r in self.store.roots() if not Path(r).exists()]
        if not missing:
            return
        emptied = [r for r in missing if not self.store.ids_in_folders(self.space, [r])]
        self.store.remove_roots(emptied)

    def _fill_evidence(self) -> None:
        """Hash the images that have no hash yet (indexed before hashes existed)."""
        files = [(p.content_hash, p.path) for _, p in self.store.iter_payloads(self.space)]
        self.evidence.fill(files, self.max_pixels, self.workers or available_cpus())

    def _upgrade_manifest(self) -> None:
        """An older library.json is upgraded once; a library we may not write is read as is."""
        try:
            with writer_lock(self.path, wait=False):
                self._manifest = upgrade_manifest(self.path, self.store.add_roots)
        except (StoreError, OSError):
            pass  # read-only: the roots stay in library.json, and `roots` reads them there


def _waiting(progress: ProgressCallback | None) -> None:
    if progress is not None:
        progress(Progress(Phase.WAIT, 0, 0))


def _check_k(k: int) -> None:
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"the number of results must be between 1 and {MAX_K}, got {k!r}")


def _best_batch(embedder: Embedder) -> int:
    return embedder.batch_size
