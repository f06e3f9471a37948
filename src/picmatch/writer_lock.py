"""One writer at a time per library: `index` and `remove` hold `<library>/write.lock`.

Two runs that change the same library (two `index` runs, an `index` and a `remove`, a server job
and the CLI) then end exactly as if they had run one after the other: the second waits for the
first. Searches never take the lock. The lock is `flock` on Linux and macOS, so it is released
when its holder exits, however it exits; elsewhere there is no lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from picmatch.errors import StoreError, disk_full_message, read_only_message

LOCK_NAME = "write.lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def writer_lock(
    folder: Path, *, on_wait: Callable[[], None] | None = None, wait: bool = True
) -> Iterator[None]:
    """Hold the library's writer lock for the block; `on_wait` is called before waiting.
    With `wait=False`, a lock held elsewhere raises StoreError instead."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(_cannot_lock(folder, exc)) from exc
    try:
        _acquire(fd, folder, on_wait, wait)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        if fcntl is not None:
            # Forked workers share this open file: unlock it for all of them, not only close it.
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _acquire(fd: int, folder: Path, on_wait: Callable[[], None] | None, wait: bool) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            raise StoreError(f"another picmatch run is writing to {folder}") from None
        if on_wait is not None:
            on_wait()
        fcntl.flock(fd, fcntl.LOCK_EX)


def _cannot_lock(folder: Path, exc: OSError) -> str:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return read_only_message(folder)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full_message(folder)
    return f"cannot lock the library in {folder} for writing: {exc.strerror or exc}"
