"""Typed errors. Every message says what went wrong and what to do next.

The CLI maps these to one line on stderr and an exit code; the HTTP API maps them to a 4xx body.
"""

from __future__ import annotations

import errno
import os


class PicmatchError(Exception):
    """Base class of every error picmatch raises on purpose."""

    exit_code = 1


class ConfigError(PicmatchError):
    """A setting, flag or spec string is invalid."""

    exit_code = 2


class LibraryNotFoundError(PicmatchError):
    """The library folder does not exist or holds no picmatch library."""

    exit_code = 3


class ImageDecodeError(PicmatchError):
    """A file could not be read as an image. `reason` is a short, stable explanation."""

    exit_code = 4

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = path
        self.reason = reason


class ImageTooLargeError(ImageDecodeError):
    """The image has more pixels than the configured cap (decompression-bomb guard)."""


class ModelError(PicmatchError):
    """A model could not be loaded, downloaded, converted or run."""

    exit_code = 5


class MissingDependencyError(PicmatchError):
    """An optional package is needed for this feature."""

    exit_code = 6

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this feature needs the package '{package}': install it with "
            f"pip install 'picmatch[{extra}]'"
        )
        self.package = package
        self.extra = extra


class StoreError(PicmatchError):
    """The vector store refused an operation or is unreachable."""

    exit_code = 7


class SpaceMismatchError(StoreError):
    """A vector space exists with another model, dimension or metric."""


class NotIndexedError(PicmatchError):
    """A path or id is not in the library."""

    exit_code = 8


class FormatError(PicmatchError):
    """A library or store was written by a newer picmatch, in a format this one cannot read."""

    exit_code = 9


def disk_full_message(folder: object) -> str:
    return (
        f"the disk holding {folder} is full: free some space there (or use another --library "
        "folder), then run the same command again; everything written so far is kept"
    )


def read_only_message(folder: object) -> str:
    return (
        f"the library in {folder} is read-only for you: searching works, but to index or "
        "remove, run picmatch as a user who may write there"
    )


def write_failure(folder: object, exc: BaseException) -> StoreError:
    """A StoreError for a failed write under `folder`: says whether the disk is full or the
    folder read-only (what to do differs), else gives the system's reason."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or (code is None and _no_space_left(folder)):
        return StoreError(disk_full_message(folder))
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreError(read_only_message(folder))
    reason = getattr(exc, "strerror", None) or str(exc)
    return StoreError(f"cannot write to {folder}: {reason}")


def _no_space_left(folder: object) -> bool:
    """For writers that hide the errno (FAISS raises RuntimeError): is the disk full?"""
    try:
        stats = os.statvfs(str(folder))
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20
