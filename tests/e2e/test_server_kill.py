"""A server killed during an indexing job leaves no decode worker holding its port or library."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.imagegen import synthetic
from tests.live_server import run_server
from tests.procs import descendants, kill_all, needs_proc, stored_count, wait_gone

pytestmark = [pytest.mark.model, pytest.mark.e2e, needs_proc]


def test_killed_server_frees_its_port(tmp_path: Path, model_cache: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(150):
        synthetic(9000 + i, (800, 600)).save(folder / f"img{i:03d}.jpg", quality=90)
    library = tmp_path / "lib"
    args = ("--allowed-root", str(folder))
    with run_server(library, model_cache, tmp_path / "server.log", args=args) as server:
        request = urllib.request.Request(
            f"{server.url}/api/index",
            data=json.dumps({"path": str(folder)}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 202)
        workers: set[int] = set()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and stored_count(library) < 12:
            workers |= descendants(server.process.pid)
            time.sleep(0.05)
        workers |= descendants(server.process.pid)
        try:
            assert workers, "the job should run decode workers"
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
            assert wait_gone(workers) == set(), "decode workers outlived the killed server"
        finally:
            kill_all(workers)
        assert stored_count(library) < 150, "the kill should land mid-job"
        assert port_bindable(server.port), "something still holds the server's port"


def port_bindable(port: int, within: float = 10.0) -> bool:
    """True once the port can be bound again. The kernel may take a moment to finish closing the
    killed server's connections on that port; a surviving worker would hold it for good."""
    deadline = time.monotonic() + within
    while True:
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                again.bind(("127.0.0.1", port))
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
        time.sleep(0.2)
