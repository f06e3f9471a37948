"""The map page: GET /map, GET /api/map (the points), GET /api/map/sheets/{n} (sprite sheets)."""

from __future__ import annotations

import gzip
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from picmatch.library import Library
from picmatch.map_payload import map_json
from picmatch.map_sheets import sheet_name
from picmatch.map_store import POINTS, load_map, map_folder
from picmatch.server.auth import require_token, require_token_or_query
from picmatch.server.http_errors import NotFoundError
from picmatch.server.schemas import ErrorBody
from picmatch.server.state import StateDep

log = logging.getLogger("picmatch.server")
STATIC_DIR = Path(__file__).parent / "static"
page_router = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/map", tags=["map"], dependencies=[Depends(require_token)])
sheet_router = APIRouter(
    prefix="/api/map", tags=["map"], dependencies=[Depends(require_token_or_query)]
)
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "missing or wrong token"},
    404: {"model": ErrorBody, "description": "no map yet (run picmatch map), or no such sheet"},
}


@dataclass
class _Cached:
    """The last map document served, gzipped, keyed by the points file's identity."""

    key: tuple[int, int] = (0, 0)
    body: bytes = b""
    lock: threading.Lock = field(default_factory=threading.Lock)


@page_router.get("/map")
async def map_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "map.html", headers={"Cache-Control": "no-cache"})


@router.get(
    "", response_class=Response, responses={200: {"content": {"application/json": {}}}, **_ERRORS}
)
async def map_points(request: Request, state: StateDep) -> Response:
    """Every image on the map: positions in [0, 1], sprite cells, colours, names, folders."""
    cache = getattr(request.app.state, "picmatch_map", None)
    if cache is None:
        cache = request.app.state.picmatch_map = _Cached()
    body = await run_in_threadpool(_gzipped_document, state.library, cache)
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/json", headers=headers)
    return Response(gzip.decompress(body), media_type="application/json", headers=headers)


@sheet_router.get("/sheets/{number}", response_class=FileResponse, responses=_ERRORS)
async def map_sheet(number: int, state: StateDep) -> FileResponse:
    """Sprite sheet `number` (JPEG): the page appends ?v=VERSION, so it can be cached."""
    path = map_folder(state.library) / sheet_name(number) if 0 <= number < 100_000 else None
    if path is None or not path.is_file():
        raise NotFoundError(f"no map sheet {number}")
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


def refresh_map_quietly(library: Library) -> None:
    """After an indexing job: bring the map up to date; a failure is logged, never raised."""
    from picmatch.errors import PicmatchError
    from picmatch.map_store import refresh_map

    try:
        refresh_map(library)
    except (PicmatchError, OSError) as exc:
        log.warning("the library map was not refreshed: %s", exc)


def _gzipped_document(library: Library, cache: _Cached) -> bytes:
    """Blocking. The document is rebuilt only when the stored map changed."""
    points = map_folder(library) / POINTS
    try:
        st = points.stat()
    except OSError:
        st = None
    with cache.lock:
        key = (st.st_mtime_ns, st.st_size) if st else (0, 0)
        if st is not None and key == cache.key:
            return cache.body
        stored = load_map(library)
        if stored is None:
            raise NotFoundError(
                f"this library has no map yet: run picmatch map --library {library.path}"
            )
        cache.key, cache.body = key, gzip.compress(map_json(library, stored), 5)
        return cache.body
