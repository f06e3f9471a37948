"""Helpers for tests that kill `picmatch` runs: descendants, liveness, cleanup (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren, ...)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _stat(int(name))
            if info is not None and info[0] != "Z":
                parents[int(name)] = info[1]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of `pids` that still run (zombies count as gone)."""
    return {pid for pid in pids if (info := _stat(pid)) is not None and info[0] != "Z"}


def wait_gone(pids: set[int], timeout: float = 15.0) -> set[int]:
    """Wait until none of `pids` runs; returns the survivors (empty on success)."""
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_all(pids: set[int]) -> None:
    """Clean up after a failed test: SIGKILL the given pids that still run."""
    for pid in alive(pids):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def stored_count(library: Path) -> int:
    """Records in a library's SQLite store, read directly (0 while there is none)."""
    db_path = library / "store" / "picmatch.db"
    if not db_path.exists():
        return 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next((t for t in tables if t.startswith("records_")), None)
        return int(db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]) if table else 0
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def picmatch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "picmatch.cli", *args]


def cli_env(library: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PICMATCH_LIBRARY=str(library), PICMATCH_CACHE_DIR=str(cache))
    env["PICMATCH_CONFIG"] = str(library.parent / "none.toml")
    return env
