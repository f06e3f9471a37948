"""Bearer-token check. Without a configured token every request is let through.

Image URLs also accept `?token=`, because an `<img>` element cannot send headers.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from picmatch.server.state import get_state

_bearer = HTTPBearer(
    auto_error=False,
    description="Needed when the server runs with --token (or PICMATCH_TOKEN).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _refuse(given: bool) -> HTTPException:
    message = "wrong access token" if given else "this server needs an access token"
    return HTTPException(
        401,
        f"{message}: send the header 'Authorization: Bearer TOKEN'",
        {"WWW-Authenticate": "Bearer"},
    )


def require_token(request: Request, credentials: Credentials) -> None:
    expected = get_state(request).settings.token
    if not expected:
        return
    given = credentials.credentials if credentials else None
    if not _matches(expected, given):
        raise _refuse(given is not None)


def require_token_or_query(
    request: Request,
    credentials: Credentials,
    token: Annotated[
        str | None, Query(description="The access token, for `<img>` elements that cannot send it")
    ] = None,
) -> None:
    expected = get_state(request).settings.token
    if not expected:
        return
    header = credentials.credentials if credentials else None
    if not (_matches(expected, header) or _matches(expected, token)):
        raise _refuse(header is not None or token is not None)
