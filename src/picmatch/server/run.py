"""`serve(settings)`: run the app with uvicorn, as `picmatch serve` does."""

from __future__ import annotations

import ipaddress
import logging
import re
import sys

from picmatch.config import Settings
from picmatch.server.limits import (
    ACCEPT_BATCH,
    HEADER_TIMEOUT,
    connection_limit,
    limited_protocol,
    raise_open_file_limit,
)

_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s]*")


class RedactTokens(logging.Filter):
    """Keep `?token=` values (image URLs carry them) out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_URL.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def serve(settings: Settings) -> None:
    """Open the library, then serve until interrupted. Errors opening it raise before binding."""
    import uvicorn

    from picmatch.server.app import create_app, open_server_library

    library = open_server_library(settings)
    app = create_app(settings, library=library)
    if not _is_loopback(settings.host) and not settings.token:
        print(
            f"picmatch: warning: serving on {settings.host} without a token; anyone who can "
            "reach this port can search and read your indexed images (use --token)",
            file=sys.stderr,
        )
    open_files = raise_open_file_limit()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        http=limited_protocol(
            connection_limit(open_files, settings.max_connections),
            header_timeout=min(HEADER_TIMEOUT, settings.body_timeout),
        ),
        backlog=ACCEPT_BATCH,
    )
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    uvicorn.Server(config).run()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
