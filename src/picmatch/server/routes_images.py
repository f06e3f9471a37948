"""GET /api/images/{id}/thumbnail and /file: only files inside an indexed root, after resolving."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from picmatch._sys import display_path
from picmatch.library import Library
from picmatch.results import ImageInfo
from picmatch.server.auth import require_token_or_query
from picmatch.server.http_errors import InvalidRequestError, NotFoundError
from picmatch.server.paths import servable_file
from picmatch.server.schemas import ErrorBody, parse_image_id
from picmatch.server.state import StateDep
from picmatch.server.thumbnails import DEFAULT_THUMBNAIL_SIZE, THUMBNAIL_SIZES, thumbnail_etag
from picmatch.server.work_limits import run_limited

router = APIRouter(
    prefix="/api/images", tags=["images"], dependencies=[Depends(require_token_or_query)]
)

THUMBNAIL_CACHE = "private, max-age=86400"
FILE_CACHE = "private, no-cache"
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong token"},
    404: {"model": ErrorBody, "description": "no such image, deleted, or outside the roots"},
}
_JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}, **_ERRORS}
_IMAGE: dict[int | str, dict[str, Any]] = {200: {"content": {"image/*": {}}}, **_ERRORS}
SizeQuery = Annotated[
    int, Query(description=f"longest side in pixels, one of {', '.join(map(str, THUMBNAIL_SIZES))}")
]


@router.get("/{image_id}/thumbnail", response_class=Response, responses=_JPEG)
async def thumbnail(
    image_id: str, request: Request, state: StateDep, size: SizeQuery = DEFAULT_THUMBNAIL_SIZE
) -> Response:
    """A JPEG thumbnail, made on first request and cached in the library folder."""
    if size not in THUMBNAIL_SIZES:
        raise InvalidRequestError(f"size must be one of {THUMBNAIL_SIZES}, not {size}")
    info, real = await run_limited(state.limits.store, servable_image, state.library, image_id)
    etag = thumbnail_etag(info.content_hash, size)
    headers = {"ETag": etag, "Cache-Control": THUMBNAIL_CACHE}
    if etag in _if_none_match(request):
        return Response(status_code=304, headers=headers)
    target = await run_limited(
        state.limits.files, state.thumbnails.get, real, info.id, info.content_hash, size
    )
    return FileResponse(target, media_type="image/jpeg", headers=headers)


@router.get("/{image_id}/file", response_class=FileResponse, responses=_IMAGE)
async def original(image_id: str, state: StateDep) -> FileResponse:
    """The original file, as indexed."""
    info, real = await run_limited(state.limits.store, servable_image, state.library, image_id)
    media_type = mimetypes.guess_type(real.name)[0] or ""
    return FileResponse(
        real,
        media_type=media_type if media_type.startswith("image/") else "application/octet-stream",
        filename=display_path(Path(info.path).name),
        content_disposition_type="inline",
        headers={"Cache-Control": FILE_CACHE},
    )


def servable_image(library: Library, image_id: str) -> tuple[ImageInfo, Path]:
    """The record and real path of an indexed image the server may read; else 404. Blocking."""
    info = library.image_info(parse_image_id(image_id))
    real = servable_file(info.path, library.roots) if info is not None else None
    if info is None or real is None:
        raise NotFoundError(f"no image with id {image_id} in this library")
    return info, real


def _if_none_match(request: Request) -> set[str]:
    header = request.headers.get("if-none-match", "")
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
