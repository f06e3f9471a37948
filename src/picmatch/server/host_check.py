"""The Host-header check that stops DNS rebinding.

A web page on `attacker.example` can make its own name resolve to 127.0.0.1, and its scripts can
then talk to a server on this machine as if it were the same site; the browser still sends
`Host: attacker.example`. So the server answers only to the names it was bound under, plus the
ones the user names with `--allowed-host` (PICMATCH_ALLOWED_HOSTS); `*` turns the check off.
"""

from __future__ import annotations

import ipaddress
import socket

from starlette.types import ASGIApp, Receive, Scope, Send

from picmatch.server.http_errors import error_response

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def allowed_host_names(bind_host: str, extra: tuple[str, ...]) -> frozenset[str] | None:
    """The host names to answer to, lower case, without brackets or port; None: any name."""
    if "*" in extra:
        return None
    names = {*LOOPBACK_NAMES, _bare(bind_host), *(_bare(name) for name in extra)}
    if bind_host in WILDCARD_BINDS:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def host_name(header: str) -> str | None:
    """The name part of a Host header (`name`, `name:port`, `[v6]:port`); None if malformed."""
    text = header.strip().lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        ok = bracket and (not rest or (rest[0] == ":" and rest[1:].isdigit()))
        return name if ok and name else None
    name, colon, port = text.partition(":")
    if colon and not port.isdigit():
        return None
    return name or None


def _bare(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheckMiddleware:
    """Answer 400 to requests whose Host header names a host this server was not bound under.

    A server bound to every interface (0.0.0.0 or ::) also answers to any IP address and to this
    machine's own names: a literal address cannot be rebound, so it is not a rebinding risk.
    """

    def __init__(self, app: ASGIApp, bind_host: str, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.bind_host = bind_host
        self.allowed = allowed
        self.any_ip = bind_host in WILDCARD_BINDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            header = _header(scope, b"host")
            name = host_name(header) if header is not None else None
            if header is not None and not self._accepts(name):
                shown = header[:100]
                message = (
                    f"this server does not answer to the host name {shown!r}; open it by the "
                    "address it listens on, or restart it with --allowed-host NAME "
                    "(PICMATCH_ALLOWED_HOSTS) to allow that name"
                )
                await error_response(400, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _accepts(self, name: str | None) -> bool:
        if self.allowed is None:
            return True
        if name is None:
            return False
        return name in self.allowed or (self.any_ip and _is_ip(name))


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return bytes(value).decode("latin-1")
    return None
