"""Open image files safely and hash them without holding them in memory.

`open_regular` never blocks and never reads anything but a regular file: a file swapped for a
FIFO after the scan would otherwise hang its reader forever, and a link to ``/dev/zero`` would
feed it endless bytes. `hash_file` and `content_hash` read in 1 MiB chunks, so hashing a 3 GiB
file costs 1 MiB of memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from typing import Final

from picmatch.errors import ImageDecodeError

_CHUNK: Final = 1 << 20
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_FLAGS: Final = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)

_KINDS: Final = (
    (stat.S_ISFIFO, "named pipe"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """Open `path` (following symlinks) for buffered binary reading if it is a regular file.

    The open itself cannot block (``O_NONBLOCK``), and the kind of file is checked on the open
    descriptor, so a swap between a check and the open cannot slip through. Raises
    `ImageDecodeError` with a short reason (``not a regular file (named pipe)``, ``file not
    found``, ...).
    """
    label = os.fspath(path)
    try:
        fd = os.open(path, _FLAGS | _NONBLOCK)
    except OSError as exc:
        raise ImageDecodeError(label, os_error_reason(exc)) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImageDecodeError(label, special_file_reason(mode))
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def hash_file(file: io.BufferedReader) -> str:
    """Hex BLAKE2b (16-byte digest) of a file's bytes from its start, read in 1 MiB chunks."""
    digest = hashlib.blake2b(digest_size=16)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    file.seek(0)
    while count := file.readinto(buffer):
        digest.update(view[:count])
    return digest.hexdigest()


def content_hash(path: str | os.PathLike[str]) -> str:
    """`hash_file` of the file at `path`.

    Raises `ImageDecodeError` with a short reason (``file not found``, ``permission denied``, ...).
    """
    with open_regular(path) as file:
        try:
            return hash_file(file)
        except OSError as exc:
            raise ImageDecodeError(os.fspath(path), os_error_reason(exc)) from exc


def special_file_reason(mode: int) -> str:
    """Why a file of this `st_mode` is not read: ``not a regular file (named pipe)`` and so on."""
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = next((name for test, name in _KINDS if test(mode)), "unknown kind")
    return f"not a regular file ({kind})"


def os_error_reason(exc: OSError) -> str:
    """A short, stable reason for a file-system error."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, NotADirectoryError):
        return "not a directory"
    return f"cannot read ({exc.strerror})" if exc.strerror else "cannot read"
