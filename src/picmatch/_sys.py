"""Small helpers every layer shares: CPU count, atomic file writes, the lazy FAISS import."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask on Linux, the CPU count elsewhere."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def faiss() -> Any:
    """The FAISS module, imported on first use (it costs ~0.3 s and most commands never need it)."""
    import faiss as module

    return module


@contextlib.contextmanager
def atomic_writer(target: Path, *, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A binary file that replaces `target` only once the block succeeds and the data is on disk.

    Readers see the old file or the new one, never half of either; on any error the temporary
    file is removed and `target` is left as it was. `mode` sets the permission bits (the default
    is 0o666 minus the umask, like a plain ``open``; ``mkstemp`` alone would give 0o600).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(target: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `target` atomically (see `atomic_writer`)."""
    with atomic_writer(target, mode=mode) as f:
        f.write(data)


def atomic_save(target: Path, save: Callable[[str], None]) -> None:
    """Atomically produce `target` with a library writer that only takes a file name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def display_path(path: str) -> str:
    """`path` as printable text: bytes of the name that are not UTF-8 shown as ``\\xff``.

    Linux allows any bytes in a name; Python keeps undecodable ones as lone surrogates, which a
    terminal, JSON or HTTP header cannot carry. `path_from_display` undoes this.
    """
    raw = path.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace")


def path_from_display(text: str) -> str:
    """The path shown as `text` by `display_path` (``\\xNN`` escapes back to their bytes)."""
    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m[1], 16)]), text.encode("utf-8"))
    return raw.decode("utf-8", "surrogateescape")
