"""Why a result matched: GET /api/readings (score words), GET/POST /api/explain (heat map PNG)."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from picmatch.errors import ImageDecodeError, NotIndexedError
from picmatch.explain import READINGS, READINGS_MODEL, FeatureMaps, heat_map_png
from picmatch.images.decode import decode_image
from picmatch.library import Library
from picmatch.models.base import RGBImage
from picmatch.server.auth import require_token, require_token_or_query
from picmatch.server.decode_gate import DecodeGate
from picmatch.server.http_errors import InvalidRequestError
from picmatch.server.routes_images import servable_image
from picmatch.server.schemas import ErrorBody
from picmatch.server.search_input import read_search_query
from picmatch.server.state import ServerState, StateDep
from picmatch.server.work_limits import run_limited

router = APIRouter(prefix="/api", tags=["explain"], dependencies=[Depends(require_token)])
image_router = APIRouter(
    prefix="/api", tags=["explain"], dependencies=[Depends(require_token_or_query)]
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong token"},
    404: {"model": ErrorBody, "description": "no such image"},
    503: {"model": ErrorBody, "description": "the library's model has no heat maps"},
}
_lock = threading.Lock()


@router.get("/readings")
async def readings(state: StateDep) -> dict[str, Any]:
    """Plain words for score ranges (`min` and up), best first; empty for models not measured."""
    known = state.library.model_spec == READINGS_MODEL
    bands = [{"min": r.min, "words": r.words} for r in READINGS] if known else []
    return {"model": state.library.model_spec, "readings": bands}


@image_router.get(
    "/explain", response_class=Response, responses={200: {"content": {"image/png": {}}}, **_ERRORS}
)
async def explain(a: str, b: str, request: Request, state: StateDep) -> Response:
    """Images `a` and `b` side by side, bright where they agree most (model feature maps)."""
    png = await _explain_limited(request, state, a, b)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@image_router.post(
    "/explain", response_class=Response, responses={200: {"content": {"image/png": {}}}, **_ERRORS}
)
async def explain_upload(b: str, request: Request, state: StateDep) -> Response:
    """Like GET, with the first image given as in POST /api/search (an upload, or JSON id/path)."""
    query = await read_search_query(request, state.settings.max_upload_bytes)
    if query.text is not None:
        raise InvalidRequestError("a heat map compares two images; give an image, not text")
    if query.image is not None:
        first: bytes | str = query.image
    elif query.image_id is not None:
        first = str(query.image_id)
    else:
        info = await run_limited(state.limits.store, state.library.find, query.path or "")
        if info is None:
            raise NotIndexedError(f"{query.path} is not an indexed image")
        first = str(info.id)
    png = await _explain_limited(request, state, first, b)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


async def _explain_limited(request: Request, state: ServerState, a: bytes | str, b: str) -> bytes:
    """Decoding and the model run in the model's threads; large decodes take their turn."""
    limits = state.limits
    return await run_limited(
        limits.model, _explain, request, state.library, a, b, limits.large_decodes
    )


def _pixels(library: Library, image: bytes | str, gate: DecodeGate) -> RGBImage:
    """An upload's pixels, or an indexed image's (by id) when the server may read it."""
    if isinstance(image, bytes):
        try:
            with gate.admit(image):
                return decode_image(image, max_pixels=library.max_pixels, min_side=256).pixels
        except ImageDecodeError as exc:
            raise type(exc)("from the upload", exc.reason) from None
    _, real = servable_image(library, image)
    with gate.admit(real):
        return decode_image(real, max_pixels=library.max_pixels, min_side=256).pixels


def _explain(request: Request, library: Library, a: bytes | str, b: str, gate: DecodeGate) -> bytes:
    pixels = [_pixels(library, a, gate), _pixels(library, b, gate)]
    with _lock:
        maps = getattr(request.app.state, "picmatch_feature_maps", None)
        if maps is None:
            maps = request.app.state.picmatch_feature_maps = FeatureMaps(library.embedder)
    return heat_map_png(maps, pixels[0], pixels[1])
