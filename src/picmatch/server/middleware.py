"""Pure ASGI middleware: body size and time limits, security headers, a catch-all for errors."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from picmatch.server.http_errors import (
    INTERNAL_ERROR,
    BodyTimeoutError,
    BodyTooLargeError,
    error_response,
    too_large_message,
)

log = logging.getLogger("picmatch.server")

# The web page only talks to its own origin; /docs loads Swagger UI from a CDN, so it is exempt.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` or slower than `timeout` seconds.

    A declared length over the limit is answered 413 before any of the body is read. Bodies
    without a length (chunked) are counted as they arrive; the first chunk past the limit raises
    `BodyTooLargeError` inside the endpoint reading it, which the error handlers turn into 413.
    A body not complete `timeout` seconds after the request started raises `BodyTimeoutError`
    (408, and the connection is closed), so slow clients cannot hold connections open.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, limit_for_message: int, timeout: float
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit_for_message = limit_for_message
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            await error_response(400, "invalid Content-Length header")(scope, receive, send)
            return
        if declared > self.max_bytes:
            message = too_large_message(self.limit_for_message)
            await error_response(413, message, {"Connection": "close"})(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def counted() -> Message:
            nonlocal received, complete
            if complete:  # later calls only wait for a disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self.timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.limit_for_message)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return counted


def _content_length(scope: Scope) -> int | None:
    """The declared body length; 0 when absent; None when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return 0


class SecurityHeadersMiddleware:
    """nosniff and no-referrer everywhere (image URLs may carry ?token=); a CSP on the page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        is_page = path == "/" or path.startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                if is_page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class CatchAllMiddleware:
    """Anything unexpected is logged here with its traceback and answered 500 with no details."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except ClientDisconnect:
            log.info("client went away during %s %s", scope.get("method"), scope.get("path"))
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await error_response(500, INTERNAL_ERROR)(scope, receive, send)
