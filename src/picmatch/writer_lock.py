"""One writer at a time per library: `index` and `remove` hold `<library>/write.lock`.

Two runs that change the same library (two `index` runs, an `index` and a `remove`, a server job
and the CLI) then end exactly as if they had run one after the other: the second waits for the
first. Searches never take the lock.

It is a POSIX record lock (`lockf`) on Linux and macOS: the kernel releases it when its holder
exits, however it exits, and forked decode workers do not inherit it (an orphaned worker can never
keep a library locked). Such locks belong to the process, so threads of one process (a server's
jobs) also take a per-library thread lock. Elsewhere only the thread lock applies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from picmatch.errors import StoreError, disk_full_message, read_only_message

LOCK_NAME = "write.lock"

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def writer_lock(
    folder: Path, *, on_wait: Callable[[], None] | None = None, wait: bool = True
) -> Iterator[None]:
    """Hold the library's writer lock for the block; `on_wait` is called before waiting.
    With `wait=False`, a lock held elsewhere raises StoreError instead."""
    with _thread_lock(folder, on_wait, wait):
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(_cannot_lock(folder, exc)) from exc
        try:
            _acquire(fd, folder, on_wait, wait)
            yield
        finally:
            os.close(fd)  # releases the record lock


@contextlib.contextmanager
def _thread_lock(folder: Path, on_wait: Callable[[], None] | None, wait: bool) -> Iterator[None]:
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault(str(folder.absolute()), threading.Lock())
    if not lock.acquire(blocking=False):
        if not wait:
            raise StoreError(f"another picmatch run is writing to {folder}")
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _acquire(fd: int, folder: Path, on_wait: Callable[[], None] | None, wait: bool) -> None:
    if fcntl is None:
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise StoreError(f"cannot lock the library in {folder}: {exc.strerror}") from exc
        if not wait:
            raise StoreError(f"another picmatch run is writing to {folder}") from None
        if on_wait is not None:
            on_wait()
        fcntl.lockf(fd, fcntl.LOCK_EX)


def _cannot_lock(folder: Path, exc: OSError) -> str:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return read_only_message(folder)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full_message(folder)
    return f"cannot lock the library in {folder} for writing: {exc.strerror or exc}"
