"""A real Milvus standalone server for the tests (the PyPI package `milvus`), on 127.0.0.1 only.

The server binds every network interface and has no option to restrict it, so it is started only
inside a loopback-only network namespace: `make test` runs pytest in one when it runs as root
(scripts/isolated.sh). Authentication is on, so the tests also cover credentials.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

TOKEN = "root:Milvus"  # the server's built-in administrator

_databases = itertools.count()


def loopback_only() -> bool:
    """True in a network namespace whose only interface is the loopback one."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


class MilvusServer:
    """One server process in `folder`; `stop()` ends it (and only it) by its process id."""

    def __init__(self, folder: Path) -> None:
        from milvus import MilvusServer as Packaged

        self._server = Packaged()
        self._server.config.set("authorization_enabled", True)
        self._server.set_base_dir(str(folder))
        self._server.start()
        self.port = int(self._server.listen_port)
        self.pid = int(self._server.server_proc.pid)

    def url(self) -> str:
        """A fresh database on this server, so every test starts from an empty store."""
        return f"milvus://127.0.0.1:{self.port}/t{os.getpid()}_{next(_databases)}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a short grace (Milvus ignores SIGTERM for about 60 s)."""
        proc = self._server.server_proc
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        self._server.server_proc = None
        self._server.stop()  # closes its log files


def drop_database(url: str) -> None:
    """Remove a test database and its collections (the server allows only 64 databases)."""
    from pymilvus import MilvusClient

    from picmatch.store.milvus import parse_url

    endpoint, database = parse_url(url)
    client = MilvusClient(uri=endpoint, token=TOKEN)
    try:
        if database not in client.list_databases():
            return
    finally:
        client.close()
    inside = MilvusClient(uri=endpoint, token=TOKEN, db_name=database)
    try:
        for name in inside.list_collections():
            inside.drop_collection(name)
    finally:
        inside.close()
    client = MilvusClient(uri=endpoint, token=TOKEN)
    try:
        client.drop_database(database)
    finally:
        client.close()


def served(folder: Path) -> Iterator[MilvusServer]:
    server = MilvusServer(folder)
    try:
        yield server
    finally:
        server.stop()
