"""Slow and vanishing clients against a real server process with a low open-file limit.

Before the limits, slow uploads held connections forever, a flood of them used up the open
files so nobody could connect (and the log filled with "Too many open files"), and every client
that hung up mid-upload was logged as an unhandled error with a traceback.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import IndexedLibrary
from tests.live_server import LiveServer, run_server

pytestmark = [pytest.mark.model, pytest.mark.e2e]

SERVER_FILES = (256, 512)  # the server starts with this soft/hard limit and raises soft to hard
BODY_TIMEOUT = 2
FLOOD = 600  # more connections than the server may open files
SLOW_UPLOAD = (
    b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
    b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
)
SLOW_HEADERS = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def server(
    indexed: IndexedLibrary, model_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FLOOD + 100
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files in the test process; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    log = tmp_path_factory.mktemp("live-limits") / "server.log"
    env = {"PICMATCH_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    with run_server(indexed.library, model_cache, log, env=env, open_files=SERVER_FILES) as live:
        yield live


def _healthy(server: LiveServer) -> bool:
    with urllib.request.urlopen(f"{server.url}/api/health", timeout=5) as response:
        return bool(response.status == 200)


def _open_slow_clients(port: int, count: int) -> list[socket.socket]:
    clients = []
    for i in range(count):
        client = socket.socket()
        client.settimeout(5)
        try:
            client.connect(("127.0.0.1", port))
            client.sendall(SLOW_UPLOAD if i % 2 else SLOW_HEADERS)
        except OSError:
            client.close()  # refused or reset at once: the server protected itself
            continue
        client.setblocking(False)
        clients.append(client)
    return clients


def _wait_until_closed(clients: list[socket.socket], timeout: float) -> tuple[int, dict[str, int]]:
    """Read every connection until the server closes it; the number still open, and the
    status lines seen."""
    statuses: dict[str, int] = {}
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client, selectors.EVENT_READ, bytearray())
    deadline = time.monotonic() + timeout
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock, received = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""  # reset: closed
            received.extend(chunk)
            if not chunk:
                status = bytes(received[9:12]).decode() or "closed"
                statuses[status] = statuses.get(status, 0) + 1
                selector.unregister(sock)
    still_open = len(selector.get_map())
    for client in clients:
        client.close()
    return still_open, statuses


def test_the_open_file_limit_is_raised(server: LiveServer) -> None:
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert (int(soft), int(hard)) == (SERVER_FILES[1], SERVER_FILES[1])


def test_a_flood_of_slow_clients_is_cut_off_and_the_server_stays_reachable(
    server: LiveServer,
) -> None:
    clients = _open_slow_clients(server.port, FLOOD)
    assert clients, "no connection was accepted"
    still_open, statuses = _wait_until_closed(clients, timeout=BODY_TIMEOUT + 10)
    assert still_open == 0, f"{still_open} slow connections were never closed ({statuses})"
    assert statuses.get("408", 0) > 0  # slow bodies timed out
    assert statuses.get("503", 0) > 0  # the connections over the limit were turned away
    assert _healthy(server)
    log = server.log_text()
    assert "Too many open files" not in log
    assert "Traceback" not in log
    assert len(log) < 200_000


def test_clients_that_hang_up_mid_upload_leave_no_traceback(server: LiveServer) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
            client.sendall(SLOW_UPLOAD + b"\xff" * 1000)
            time.sleep(0.05)
    time.sleep(0.5)
    assert _healthy(server)
    log = server.log_text()
    assert "Traceback" not in log
    assert "unhandled error" not in log
