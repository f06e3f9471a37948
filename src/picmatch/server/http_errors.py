"""Errors become JSON bodies `{"error": "..."}` with a fitting status; never a stack trace.

Errors caused by the request get a 4xx status; faults of the server itself (the model or the
store failing, a missing optional package) get 503 with the same body, so clients can tell them
apart from their own mistakes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from picmatch._sys import display_path
from picmatch.errors import (
    ConfigError,
    ImageDecodeError,
    LibraryNotFoundError,
    MissingDependencyError,
    ModelError,
    NotIndexedError,
    PicmatchError,
    SpaceMismatchError,
    StoreError,
)

INTERNAL_ERROR = "internal server error; the details are in the server log"


class BadRequestError(PicmatchError):
    """The request is malformed in a way validation cannot express."""


class InvalidRequestError(PicmatchError):
    """The body parsed, but its fields are not valid."""


class UnsupportedMediaTypeError(PicmatchError):
    """The request body has a content type the endpoint does not take."""


def too_large_message(limit: int) -> str:
    return (
        f"the upload is larger than the limit of {limit} bytes; send a smaller image "
        "or raise max_upload_bytes (PICMATCH_MAX_UPLOAD_BYTES)"
    )


class UploadTooLargeError(PicmatchError):
    """The uploaded file is larger than the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(too_large_message(limit))


class BodyTooLargeError(StarletteHTTPException):
    """Raised while a request body is read, once it passes the limit.

    An HTTPException, because FastAPI's own body parsing turns any other exception into 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit), {"Connection": "close"})


class BodyTimeoutError(StarletteHTTPException):
    """Raised while a request body is read, once it has taken longer than `body_timeout`."""

    def __init__(self, seconds: float) -> None:
        message = (
            f"the request body did not arrive within {seconds:g} s; send it faster, "
            "or raise body_timeout (PICMATCH_BODY_TIMEOUT)"
        )
        super().__init__(408, message, {"Connection": "close"})


class ForbiddenPathError(PicmatchError):
    """The path is outside the folders this server may touch."""


class NotFoundError(PicmatchError):
    """The thing asked for does not exist (or may not be shown)."""


# First match wins, so subclasses come before their bases.
_STATUS: tuple[tuple[type[PicmatchError], int], ...] = (
    (UploadTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (InvalidRequestError, 422),
    (ForbiddenPathError, 403),
    (NotFoundError, 404),
    (NotIndexedError, 404),
    (ImageDecodeError, 422),
    (SpaceMismatchError, 409),
    (ConfigError, 400),
    (LibraryNotFoundError, 503),
    (ModelError, 503),
    (StoreError, 503),
    (MissingDependencyError, 503),
)


def status_for(exc: PicmatchError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": display_path(message)}, status_code=status, headers=headers)


async def _picmatch_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc) if isinstance(exc, PicmatchError) else 400
    return error_response(status, str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):
        return error_response(500, INTERNAL_ERROR)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return error_response(422, "invalid request: " + describe_validation_errors(errors))


def describe_validation_errors(errors: object) -> str:
    """One line from pydantic's error list: `k: Input should be less than or equal to 1000`."""
    parts = []
    for error in errors if isinstance(errors, list | tuple) else []:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PicmatchError, _picmatch_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
