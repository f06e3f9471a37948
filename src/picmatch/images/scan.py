"""Find image files under folders.

`scan` walks with `os.scandir` and yields as it goes, so it starts at once and keeps memory flat on
millions of files: it holds one sorted listing per open folder plus the identity of every folder
visited. Entries come in a deterministic order (each folder's entries sorted by name, depth first).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from picmatch.images.files import content_hash as content_hash  # its old home, kept for callers
from picmatch.images.files import os_error_reason, special_file_reason

IMAGE_EXTENSIONS: Final = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
    }
)
"""Lower-case suffixes (with the dot) of the files `scan` yields; matched case-insensitively."""

JUNK_NAMES: Final = frozenset(
    {
        "@eadir",  # Synology thumbnails
        "#recycle",  # Synology recycle bin
        "#snapshot",  # Synology snapshots
        "@recycle",  # QNAP recycle bin
        "@recently-snapshot",  # QNAP snapshots
        "$recycle.bin",  # Windows recycle bin
        "system volume information",  # Windows
        "thumbs.db",  # Windows thumbnail cache
        "desktop.ini",  # Windows folder settings
    }
)
"""File and folder names `scan` skips (compared case-insensitively), besides every name starting
with a dot (hidden files, ``.DS_Store``, ``.Trashes``, ``._*`` AppleDouble files, ``.@__thumb``)."""

ErrorHandler = Callable[[str, str], None]
_DirKey = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True)
class FileEntry:
    """One image file found by `scan`: absolute, normalised path (symlinks kept), size, mtime."""

    path: str
    size: int
    mtime_ns: int


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the `IMAGE_EXTENSIONS` (any case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_skipped_name(name: str) -> bool:
    """Whether `scan` skips a file or folder with this name (hidden or NAS/OS junk)."""
    return name.startswith(".") or name.casefold() in JUNK_NAMES


def scan(
    roots: Iterable[str | Path],
    *,
    on_error: ErrorHandler | None = None,
    exclude: Iterable[str | Path] = (),
) -> Iterator[FileEntry]:
    """Yield every image file under `roots`, each once, in a deterministic order.

    A root that is a file is yielded as given, whatever its name. Hidden and junk entries under a
    root are skipped. Folder symlinks are followed, but no folder is walked twice, so symlink loops
    end and overlapping roots yield each file once. Folders and files that cannot be read, and
    image names that are no regular file (FIFOs, devices, links to ``/dev/zero``), are reported
    as ``on_error(path, reason)`` and skipped. Folders in `exclude` (and what they hold) are
    never walked.
    """
    walker = _Walker(on_error or _ignore)
    for folder in exclude:
        with contextlib.suppress(OSError):
            walker.visited.add(_key(os.stat(folder)))
    for root in roots:
        yield from walker.walk_root(os.path.abspath(os.fspath(root)))


def _ignore(path: str, reason: str) -> None:
    del path, reason


@dataclass
class _Walker:
    """State shared by all roots of one scan: folders visited and files given as roots."""

    on_error: ErrorHandler
    visited: set[_DirKey] = field(default_factory=set)
    root_files: set[_DirKey] = field(default_factory=set)

    def walk_root(self, path: str) -> Iterator[FileEntry]:
        try:
            info = os.stat(path)
        except OSError as exc:
            self.on_error(path, os_error_reason(exc))
            return
        if stat.S_ISDIR(info.st_mode):
            yield from self._walk_dir(path, info)
        elif stat.S_ISREG(info.st_mode):
            if not self._seen_root_file(path, info):
                yield FileEntry(path, info.st_size, info.st_mtime_ns)
        else:
            self.on_error(path, special_file_reason(info.st_mode))

    def _walk_dir(self, top: str, info: os.stat_result) -> Iterator[FileEntry]:
        if not self._first_visit(info):
            return
        stack = [self._listing(top)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
            elif is_skipped_name(entry.name):
                continue
            elif _is_dir(entry):
                sub = self._stat(entry)
                if sub is not None and self._first_visit(sub):
                    stack.append(self._listing(entry.path))
            elif is_image_name(entry.name):
                found = self._file(entry)
                if found is not None:
                    yield found

    def _listing(self, path: str) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(path) as entries:
                listing = sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            self.on_error(path, os_error_reason(exc))
            return iter(())
        return iter(listing)

    def _file(self, entry: os.DirEntry[str]) -> FileEntry | None:
        info = self._stat(entry)
        if info is None:
            return None
        if not stat.S_ISREG(info.st_mode):  # a FIFO, a device, a link to /dev/zero
            self.on_error(entry.path, special_file_reason(info.st_mode))
            return None
        if self.root_files and (info.st_dev, info.st_ino) in self.root_files:
            return None  # already yielded as a root of its own
        return FileEntry(entry.path, info.st_size, info.st_mtime_ns)

    def _stat(self, entry: os.DirEntry[str]) -> os.stat_result | None:
        try:
            return entry.stat()
        except FileNotFoundError:
            if _is_symlink(entry):
                self.on_error(entry.path, "broken symbolic link")
            return None  # otherwise it vanished since the listing: nothing to report
        except OSError as exc:
            self.on_error(entry.path, os_error_reason(exc))
            return None

    def _first_visit(self, info: os.stat_result) -> bool:
        key = (info.st_dev, info.st_ino)
        if key in self.visited:
            return False
        self.visited.add(key)
        return True

    def _seen_root_file(self, path: str, info: os.stat_result) -> bool:
        """Whether a file given as a root was or will be yielded by another root's walk."""
        key = (info.st_dev, info.st_ino)
        if key in self.root_files:
            return True
        self.root_files.add(key)
        if not is_image_name(path) or is_skipped_name(os.path.basename(path)):
            return False
        try:
            parent = os.stat(os.path.dirname(path))
        except OSError:
            return False
        return (parent.st_dev, parent.st_ino) in self.visited


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_symlink(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _key(info: os.stat_result) -> _DirKey:
    return (info.st_dev, info.st_ino)
