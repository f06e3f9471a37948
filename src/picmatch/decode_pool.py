"""Decode image files in worker processes that never outlive the run that started them.

A worker is forked (or spawned) by the indexing process. If that process is killed (SIGKILL, an
OOM kill, a crash), nothing would tell the workers: they would wait forever on their task queue,
holding memory, the store's file descriptors and, when a server ran the job, its listening
socket. So each worker asks Linux to SIGKILL it when its parent dies (``PR_SET_PDEATHSIG``), and
on every system also runs a thread that exits the worker once its parent pid changes (the parent
died and the worker was re-parented). Workers ignore SIGINT and SIGTERM: a Ctrl-C or a SIGTERM
sent to the whole process group reaches the parent too, and the parent stops the run.

A file is opened once, as a regular file (`open_regular`: a FIFO or device is refused, never
read), decoded from that descriptor, and hashed from it in 1 MiB chunks when asked: a worker never
holds more of a file than the decoder needs.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Final, Protocol, TypeVar

from picmatch.errors import ImageDecodeError
from picmatch.images.decode import DecodedImage, load_for_model
from picmatch.images.files import hash_file, open_regular, os_error_reason
from picmatch.images.fit import Preprocess

DecodeResult = DecodedImage | tuple[DecodedImage, str] | str
"""The decoded image, the decoded image with the file's hash (when asked), or why it failed."""

_PR_SET_PDEATHSIG: Final = 1
_PARENT_POLL_SECONDS: Final = 0.5


class DecodeTask(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def wants_hash(self) -> bool: ...


T = TypeVar("T", bound=DecodeTask)


def decode_file(path: str, pre: Preprocess, max_pixels: int, hash_it: bool) -> DecodeResult:
    """Decode one file for the model (with its content hash when `hash_it`), or say why not.

    Runs in a worker process; never raises for a bad file.
    """
    try:
        with open_regular(path) as file:
            decoded = load_for_model(file, pre, max_pixels=max_pixels)
            if not hash_it:
                return decoded
            try:
                return decoded, hash_file(file)
            except OSError as exc:
                return os_error_reason(exc)
    except ImageDecodeError as exc:
        return exc.reason
    except MemoryError:
        return "not enough memory to decode this image"
    except Exception as exc:  # a decoder bug must not stop the run; report it per file
        return f"unexpected decoder error: {type(exc).__name__}: {exc}"


def parallel_decode(
    tasks: Iterable[T], pre: Preprocess, max_pixels: int, workers: int
) -> Generator[tuple[T, DecodeResult]]:
    """Decode in a process pool with a bounded number of files in flight, in completion order.

    A worker that dies (a crashing codec) breaks the pool: the pool is restarted and the files
    that were in flight are retried once; a file that breaks it twice is reported and skipped.
    Closing the iterator early (an error or a signal in the caller) cancels the queued files and
    shuts the pool down.
    """
    queue = list(tasks)
    queue.reverse()
    if workers <= 1 or len(queue) < 4:
        while queue:
            task = queue.pop()
            yield task, decode_file(task.path, pre, max_pixels, task.wants_hash)
        return
    attempts: dict[str, int] = {}
    limit = max(4, workers * 4)
    while queue:
        pool = ProcessPoolExecutor(
            workers, _pool_context(), initializer=_worker_init, initargs=(os.getpid(),)
        )
        flying: dict[Future[DecodeResult], T] = {}
        try:
            while queue or flying:
                while queue and len(flying) < limit:
                    task = queue.pop()
                    args = (task.path, pre, max_pixels, task.wants_hash)
                    flying[pool.submit(decode_file, *args)] = task
                done, _ = wait(flying, return_when=FIRST_COMPLETED)
                for future in done:
                    task = flying.pop(future)
                    yield task, future.result()
        except BrokenProcessPool:
            for task in flying.values():
                attempts[task.path] = attempts.get(task.path, 0) + 1
                if attempts[task.path] >= 2:
                    yield task, "the decoder crashed on this file"
                else:
                    queue.append(task)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """End this process when process `parent` ends (called first thing in a child)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watch thread below still works
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    watch = threading.Thread(
        target=_exit_when_orphaned, args=(parent,), name="picmatch-parent-watch", daemon=True
    )
    watch.start()


def _exit_when_orphaned(parent: int) -> None:
    """Portable fallback: a re-parented child (the parent died) has another parent pid."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)


def _pool_context() -> multiprocessing.context.BaseContext:
    """`fork` where there is one (Linux): a spawned worker re-runs the caller's main script,
    so a user script calling `lib.index()` without an `if __name__ == "__main__":` guard would
    fail (and index twice). The forked workers only run Pillow and numpy, never the model or the
    store the parent's threads use, so forking a multi-threaded parent is safe here."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
