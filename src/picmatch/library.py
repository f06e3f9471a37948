"""The facade: everything a user does goes through `Library`. CLI and HTTP API are thin adapters.

A library is a folder holding `library.json` (model, store URL, pipeline parameters) and, by
default, the embedded store in `store/`, which also holds the indexed roots. Writers (index,
remove) take the library's writer lock, so concurrent runs serialise.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import numpy as np

from picmatch._sys import available_cpus, path_from_display
from picmatch.config import DEFAULT_MAX_PIXELS, DEFAULT_MODEL, Settings, default_cache_dir
from picmatch.errors import ConfigError, LibraryNotFoundError, NotIndexedError, StoreError
from picmatch.evidence import EvidenceCache
from picmatch.evidence import pixels_fit_for_hash as hashable
from picmatch.images.scan import FileEntry
from picmatch.indexer import Indexer, IndexReport, Phase, Progress, ProgressCallback, record_id
from picmatch.manifest import (
    needs_upgrade,
    new_manifest,
    read_manifest,
    upgrade_manifest,
    write_manifest,
)
from picmatch.models.base import Embedder, FloatArray, Modality, RGBImage
from picmatch.models.hub import DownloadProgress
from picmatch.results import DupeReport, Hit, ImageInfo, LibraryStats, hit_of, info_of
from picmatch.spaces import (
    Embedders,
    Space,
    pick,
    set_spaces,
    space_name,
    spaces_of,
    text_capable,
    text_error,
)
from picmatch.store.base import (
    Metric,
    SearchFilter,
    SpaceInfo,
    VectorStore,
)
from picmatch.thumbnail_files import THUMBNAILS, prune_thumbnails
from picmatch.writer_lock import writer_lock

if TYPE_CHECKING:
    from picmatch.dupe_actions import DupeActions

MAX_K = 10_000

ImageQuery = str | os.PathLike[str] | bytes | BinaryIO | RGBImage


__all__ = ["Library", "open_library", "open_with_settings", "space_name"]


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
    download_progress: DownloadProgress | None = None,
) -> Library:
    """Open the library in `path` (default: the per-user data folder), creating it if allowed.

    `params` are the pipeline parameters a new library records (default: the model's current
    `default_params`); an existing library keeps its own, and asking for others is an error.
    `store` is the store URL of a new library (default: SQLite inside it); `store_token` holds
    the credentials of a networked store, which never go into the URL or `library.json`.
    `download_progress` is called as model files download (a hub model's first use).
    `model` is the first model of a new library; for an existing one, it picks the vector space
    this `Library` indexes and searches (a model the library has no space for gets one at the
    next `index()`; see spaces.py).
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
    elif params is not None and model is None and dict(params) != manifest.get("params", {}):
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
        model=model,
        download_progress=download_progress,
    )


def open_with_settings(
    settings: Settings, *, create: bool, download_progress: DownloadProgress | None = None
) -> Library:
    """`open_library` with everything taken from `settings` (what the CLI and server do);
    `download_progress` hears about model files fetched from a hub on first use."""
    return open_library(
        settings.library,
        create=create,
        model=settings.model,
        store=settings.store,
        store_token=settings.store_token,
        cache_dir=settings.cache_dir,
        workers=settings.workers,
        batch_size=settings.batch_size,
        max_pixels=settings.max_pixels,
        download_progress=download_progress,
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
        model: str | None = None,
        download_progress: DownloadProgress | None = None,
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
        self._selected = model.strip() if model else None
        self._embedders = Embedders(cache_dir, download_progress)
        self._evidence: EvidenceCache | None = None
        self._lock = threading.Lock()
        if needs_upgrade(manifest):
            self._upgrade_manifest()

    # properties

    @property
    def spaces(self) -> list[Space]:
        """The library's vector spaces, one per model; the first is the default."""
        return spaces_of(self._manifest)

    @property
    def model_spec(self) -> str:
        """The model of the space this `Library` uses (chosen at open, else the default)."""
        return self._selected or self.spaces[0].model

    @property
    def space(self) -> str:
        return space_name(self.model_spec)

    @property
    def params(self) -> dict[str, str]:
        return dict(self._space().params)

    @property
    def roots(self) -> tuple[Path, ...]:
        """The indexed folders, read from the store each time: another process may add some."""
        found = self.store.roots()
        found += [r for r in self._manifest.get("roots", []) if r not in found]  # not upgraded
        return tuple(Path(r) for r in found)

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (searching by an indexed image does not need it)."""
        return self.embedder_for(self.model_spec)

    def embedder_for(self, model: str | None) -> Embedder:
        """The embedder of the space of `model` (default: this Library's)."""
        return self._embedders.get(self._space(model), self.spaces)

    # indexing

    def index(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        model: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Index files and folders; re-runs only touch what changed. Returns what happened.

        Every vector space is brought up to date from one scan, or only the space of `model`
        (or of the model this Library was opened with), which is added if it is new.
        """
        roots = [Path(p).expanduser().absolute() for p in paths]
        missing = [str(r) for r in roots if not r.exists()]
        if missing:
            raise NotIndexedError(f"not found: {', '.join(missing)}; check the path and try again")
        started = time.perf_counter()
        with writer_lock(self.path, on_wait=lambda: _waiting(progress)):
            report = self._index_locked(roots, model, progress)
        report.seconds = time.perf_counter() - started
        return report

    def load_models(self, model: str | None = None) -> list[Embedder]:
        """The embedders `index(model=...)` runs, loaded now (a hub model downloads on first
        use), so a caller can show the download before the indexing progress."""
        from picmatch.models.registry import default_params

        target = model.strip() if model else self._selected
        if not target:
            return [self._embedders.get(s, self.spaces) for s in self.spaces]
        known = [s for s in self.spaces if s.model == target]
        space = known[0] if known else Space(target, default_params(target))
        return [self._embedders.get(space, self.spaces)]

    def _index_locked(
        self, roots: list[Path], model: str | None, progress: ProgressCallback | None
    ) -> IndexReport:
        target = model.strip() if model else self._selected
        spaces = [self._add_space(target)] if target else self.spaces
        for space in spaces:
            self._ensure_space(space)
        self.store.add_roots([str(r) for r in roots])
        report: IndexReport | None = None
        scanned: dict[str, FileEntry] | None = None  # one scan, shared by the spaces
        for space in spaces:
            report, scanned = self._index_space(space, roots, report, scanned, progress)
        if report is None:
            raise NotIndexedError("this library has no vector space to index into")
        if report.moved:
            self._forget_emptied_roots()
        self._fill_evidence()
        self.store.flush(_index_progress(progress))
        self._prune_thumbnails()
        return report

    def _index_space(
        self,
        space: Space,
        roots: list[Path],
        first: IndexReport | None,
        scanned: dict[str, FileEntry] | None,
        progress: ProgressCallback | None,
    ) -> tuple[IndexReport, dict[str, FileEntry]]:
        """One space's run; after the first, it reuses the first run's scan and adds its
        model work to the first run's report."""
        embedder = self._embedders.get(space, self.spaces)
        default = space.name == self.spaces[0].name
        indexer = Indexer(
            self.store,
            space.name,
            embedder,
            workers=self.workers,
            batch_size=self.batch_size or embedder.batch_size,
            max_pixels=self.max_pixels,
            progress=progress,
            exclude=(self.path,),  # a library inside an indexed folder never indexes itself
            on_pixels=self.evidence.put_pixels
            if default and hashable(embedder.preprocess)
            else None,
        )
        report = indexer.run(roots, scanned=scanned)
        if first is None:
            return report, indexer.seen
        first.embedded += report.embedded
        first.embed_seconds += report.embed_seconds
        known = {path for path, _ in first.skipped}
        first.skipped += [(p, r) for p, r in report.skipped if p not in known]
        return first, indexer.seen

    def remove(self, paths: Sequence[str | os.PathLike[str]]) -> int:
        """Drop files and folders (and roots) from the library; returns the number of images."""
        targets = [str(Path(p).expanduser().absolute()) for p in paths]
        flt = SearchFilter(path_prefixes=tuple(targets))
        with writer_lock(self.path):
            removed = 0
            for space in self.spaces:  # every space holds the same files
                ids = self.store.ids_in_folders(space.name, targets)
                self.store.delete(space.name, ids)
                removed = max(removed, len(ids))
            self.store.remove_roots([r for r in self.store.roots() if flt.accepts(-1, r)])
            self.store.flush()
            self._prune_thumbnails()
        return removed

    # searching

    def search(
        self,
        query: ImageQuery,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        exclude: Collection[int] = (),
        model: str | None = None,
    ) -> list[Hit]:
        """Most similar indexed images to an image file, indexed path, bytes or RGB array.

        `folders` keeps only hits inside them; `exclude` drops the images with these ids;
        `model` picks the vector space (default: this Library's).
        """
        vector = self.query_vector(query, model=model)
        return self.search_vector(
            vector, k, min_score=min_score, folders=folders, exclude=exclude, model=model
        )

    def search_text(
        self,
        text: str,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        model: str | None = None,
    ) -> list[Hit]:
        """Indexed images that match a text query ("a red bicycle"); needs a CLIP-family space."""
        vector = self.text_vector(text, model=model)
        return self.search_vector(vector, k, min_score=min_score, folders=folders, model=model)

    def text_vector(self, text: str, *, model: str | None = None) -> FloatArray:
        """The vector of a text query in the space of `model`; ConfigError for image-only ones."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("the text query is empty: type what to look for")
        space = self._space(model)
        embedder = self._embedders.get(space, self.spaces)
        if Modality.TEXT not in embedder.modalities:
            raise text_error(space, self.spaces)
        vector: FloatArray = embedder.embed_text([text])[0]
        return vector

    def search_id(
        self,
        image_id: int,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        model: str | None = None,
    ) -> list[Hit]:
        records = self._require_space_records([image_id], self._space(model).name)
        return self.search_vector(records[0], k, min_score=min_score, folders=folders, model=model)

    def search_vector(
        self,
        vector: FloatArray,
        k: int = 10,
        *,
        min_score: float | None = None,
        folders: Sequence[str | os.PathLike[str]] = (),
        exclude: Collection[int] = (),
        model: str | None = None,
    ) -> list[Hit]:
        _check_k(k)
        name = self._space(model).name
        prefixes = tuple(str(Path(f).expanduser().absolute()) for f in folders)
        flt = SearchFilter(prefixes, frozenset(exclude)) if prefixes or exclude else None
        hits = self.store.search(name, np.atleast_2d(vector), k, flt)[0]
        floor = -1.0 if min_score is None else min_score
        return [hit_of(h) for h in hits if h.score >= floor]

    def query_vector(self, query: ImageQuery, *, model: str | None = None) -> FloatArray:
        """The vector of a query: the stored one for an unchanged indexed file, else embedded."""
        space = self._space(model)
        if isinstance(query, str | os.PathLike):
            stored = self._stored_vector(Path(query).expanduser().absolute(), space.name)
            if stored is not None:
                return stored
        from picmatch.images.decode import load_for_model

        embedder = self._embedders.get(space, self.spaces)
        if isinstance(query, np.ndarray):
            pixels = query
        else:
            pixels = load_for_model(query, embedder.preprocess, max_pixels=self.max_pixels).pixels
        vector: FloatArray = embedder.embed_images([pixels])[0]
        return vector

    def drop_space(self, model: str) -> int:
        """Remove the vector space of `model` (its vectors; the files and other spaces stay).
        Returns how many images it held."""
        space = pick(self.spaces, model, self.path)
        if len(self.spaces) == 1:
            raise ConfigError(
                f"{model} is this library's only model; a library keeps at least one. Add "
                "another first (picmatch index FOLDER --model SPEC), or delete the library folder"
            )
        held = self.count(model=space.model)
        with writer_lock(self.path):
            self.store.drop_space(space.name)
            set_spaces(self._manifest, [s for s in self.spaces if s.name != space.name])
            self._save_manifest()
        return held

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
        cache = self.path / "dupes-pairs.npz"
        return find_duplicates(
            self.store,
            self.space,
            self.evidence,
            scope,
            tier,
            min_score,
            self.max_pixels,
            workers,
            cache,
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

    def count(self, *, model: str | None = None) -> int:
        name = self._space(model).name
        return self.store.count(name)

    def stats(self) -> LibraryStats:
        return LibraryStats(
            path=str(self.path),
            model=self.model_spec,
            store=self.store.url,
            images=self.count(),
            store_bytes=self.store.size_bytes(),
            index=_index_info(self.store, self.space),
            roots=tuple(str(r) for r in self.roots),
            params=self.params,
            models=tuple(s.model for s in self.spaces),
            text_models=tuple(s.model for s in self.spaces if text_capable(s.model)),
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

    def _space(self, model: str | None = None) -> Space:
        """The space of `model`, or of this Library's model; ConfigError if there is none."""
        return pick(self.spaces, model or self.model_spec, self.path)

    def _add_space(self, model: str) -> Space:
        """The space of `model`, added to the manifest (with its default parameters) if new."""
        from picmatch.models.registry import default_params

        spaces = self.spaces
        for space in spaces:
            if space.model == model:
                return space
        space = Space(model, default_params(model))
        if any(s.name == space.name for s in spaces):
            raise ConfigError(f"{model} would share a vector space name with another model")
        set_spaces(self._manifest, [*spaces, space])
        self._save_manifest()
        return space

    def _ensure_space(self, space: Space) -> None:
        embedder = self._embedders.get(space, self.spaces)
        self.store.ensure_space(
            SpaceInfo(space.name, embedder.dim, Metric.COSINE, space.model, space.params)
        )

    def _stored_vector(self, path: Path, space: str) -> FloatArray | None:
        records = self.store.get(space, [record_id(str(path))])
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

    def _require_space_records(self, ids: list[int], space: str) -> list[FloatArray]:
        records = self.store.get(space, ids)
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

    def _save_manifest(self) -> None:
        write_manifest(self.path, self._manifest)

    def _prune_thumbnails(self) -> None:
        """The server's thumbnails of images removed or changed since go with them."""
        space = self.spaces[0].name

        def hashes(ids: list[int]) -> dict[int, str]:
            return {r.id: r.payload.content_hash for r in self.store.get(space, ids)}

        prune_thumbnails(self.path / THUMBNAILS, hashes)

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


def _index_progress(progress: ProgressCallback | None) -> Callable[[int, int], None] | None:
    """The store's index build, reported as the last phase of an index run."""
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(Progress(Phase.INDEX, done, total))


def _index_info(store: VectorStore, space: str) -> dict[str, object]:
    """The store's search index (kind, recall...), where the backend reports it."""
    return store.index_info(space)


def _check_k(k: int) -> None:
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"the number of results must be between 1 and {MAX_K}, got {k!r}")
