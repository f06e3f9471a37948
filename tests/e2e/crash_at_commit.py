"""Run the picmatch CLI, but die (os._exit) just before the Nth SQLite COMMIT of the process.

Usage: python crash_at_commit.py N picmatch-args... ; exit code 99 when it died, else the CLI's.
Every connection is traced, so this needs no knowledge of where picmatch commits.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

_connect = sqlite3.connect
_commits = 0


def _traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    db = _connect(*args, **kwargs)

    def trace(statement: str) -> None:
        global _commits
        if statement.lstrip().upper().startswith(("COMMIT", "END")):
            _commits += 1
            if _commits >= int(sys.argv[1]):
                os._exit(99)

    db.set_trace_callback(trace)
    return db


if __name__ == "__main__":
    sqlite3.connect = _traced
    from picmatch.cli import main

    sys.exit(main(sys.argv[2:]))
