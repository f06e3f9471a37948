"""`picmatch serve` as a real process on 127.0.0.1, for tests and benchmarks that need sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _limit_open_files(soft: int, hard: int) -> Callable[[], None]:
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


@contextmanager
def run_server(
    library: Path,
    model_cache: Path,
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    open_files: tuple[int, int] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[LiveServer]:
    """Start the server, wait until /api/health answers, stop it with SIGTERM afterwards."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PICMATCH_")}
    environ.update(
        PICMATCH_CACHE_DIR=str(model_cache), PICMATCH_CONFIG=str(log.parent / "no-config.toml")
    )
    environ.update(env or {})
    command = [sys.executable, "-m", "picmatch.cli", "serve", "--library", str(library)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), *args],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_open_files(*open_files) if open_files else None,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", port, process, log)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_healthy(server: LiveServer, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited: {server.log_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not start: {server.log_text()}")
