"""Connection-level limits of `picmatch serve`: open files, connections, and header time.

Every open connection holds a file descriptor. Without a cap, a few hundred slow clients use up
the process's open-file limit; then `accept()` fails in a loop, nobody can connect, and the log
fills with "Too many open files". So the server raises its soft open-file limit to the hard one,
keeps the number of open connections well below it (answering the rest 503 and closing them at
once), accepts few connections per loop turn, and closes connections that send no request
headers in time. Slow request bodies are cut off by `BodyLimitMiddleware` (`body_timeout`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("picmatch.server")

FD_RESERVE = 160  # files the server needs besides connections: store, model, pool, thumbnails
FDS_PER_CONNECTION = 2  # the socket, and a file being served or a spooled upload
MIN_CONNECTIONS = 8
MAX_CONNECTIONS = 1000
ACCEPT_BATCH = 64  # connections accepted per event-loop turn (uvicorn's `backlog`)
HEADER_TIMEOUT = 10.0  # seconds a new connection may take to send its request headers
DEFAULT_OPEN_FILES = 1024  # where the platform cannot tell


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one; return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # Windows
        return DEFAULT_OPEN_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # macOS refuses values above OPEN_MAX; the old soft limit stays
    return int(soft) if soft != resource.RLIM_INFINITY else MAX_CONNECTIONS * 4


def connection_limit(open_files: int, configured: int | None = None) -> int:
    """How many connections may be open at once: the setting, else sized from the file limit."""
    if configured is not None:
        return configured
    fitting = (open_files - FD_RESERVE) // FDS_PER_CONNECTION
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, fitting))


def limited_protocol(max_connections: int, header_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with a connection cap and a deadline for the request headers."""
    return type(
        "LimitedH11Protocol",
        (LimitedH11Protocol,),
        {"max_connections": max_connections, "header_timeout": header_timeout},
    )


class LimitedH11Protocol(H11Protocol):
    max_connections: ClassVar[int] = MAX_CONNECTIONS
    header_timeout: ClassVar[float] = HEADER_TIMEOUT
    _last_warning: ClassVar[float] = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(transport)
            return
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        """A connection that has not sent a whole request line and headers in time is closed."""
        if self.cycle is None and not self.transport.is_closing():
            log.info("closed a connection that sent no request in %.0f s", self.header_timeout)
            self.transport.close()

    def _refuse(self, transport: asyncio.Transport) -> None:
        body = json.dumps({"error": "the server has too many open connections; retry shortly"})
        transport.write(_busy_response(body.encode()))
        transport.close()
        now = time.monotonic()
        if now - LimitedH11Protocol._last_warning > 10:
            LimitedH11Protocol._last_warning = now
            log.warning(
                "%d connections are open, the limit; refusing new ones (503) until some close",
                self.max_connections,
            )


def _busy_response(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: 2\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body
