"""POST /api/search: similar images to an upload, or to an indexed image (by id or path)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from picmatch.errors import ImageDecodeError, NotIndexedError
from picmatch.library import Library
from picmatch.models.base import FloatArray
from picmatch.results import Hit
from picmatch.server.auth import require_token
from picmatch.server.decode_gate import DecodeGate
from picmatch.server.http_errors import BadRequestError
from picmatch.server.schemas import (
    ErrorBody,
    SearchHit,
    SearchRequest,
    SearchResponse,
)
from picmatch.server.search_input import SearchQuery, read_search_query
from picmatch.server.state import ServerState, StateDep
from picmatch.server.work_limits import run_limited

router = APIRouter(prefix="/api", tags=["search"], dependencies=[Depends(require_token)])

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "the query image"},
        "k": {"type": "integer", "minimum": 1, "default": 10},
        "min_score": {"type": "number", "minimum": -1, "maximum": 1},
        "folders": {"type": "array", "items": {"type": "string"}},
        "model": {"type": "string", "description": "which model's vectors"},
    },
}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
            "application/json": {"schema": SearchRequest.model_json_schema()},
        },
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "missing or wrong token",
        404: "the id or path is not an indexed image",
        413: "the upload is larger than max_upload_bytes",
        415: "neither multipart/form-data nor JSON",
        422: "invalid fields, not an image, or more pixels than the cap",
    }.items()
}


@router.post("/search", response_model=SearchResponse, openapi_extra=_BODY, responses=_ERRORS)
async def search(request: Request, state: StateDep) -> SearchResponse:
    """Most similar indexed images, best first. Upload an image, or name an indexed one."""
    started = time.perf_counter()
    query = await read_search_query(request, state.settings.max_upload_bytes)
    hits = await run_search(state, query)
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return SearchResponse(hits=[SearchHit.of(h) for h in hits], took_ms=took_ms)


async def run_search(state: ServerState, query: SearchQuery) -> list[Hit]:
    """Embed an upload (model threads), then search the store (store threads); or search by
    the stored vector of an indexed image (store threads only)."""
    library, limits = state.library, state.limits
    if query.text is not None:
        vector = await run_limited(limits.model, _embed_text, library, query)
        return await run_limited(limits.store, _search_vector, library, vector, query)
    if query.image is not None:
        vector = await run_limited(
            limits.model, _embed_upload, library, query, limits.large_decodes
        )
        return await run_limited(limits.store, _search_vector, library, vector, query)
    return await run_limited(limits.store, _search_indexed, library, query)


def _embed_text(library: Library, query: SearchQuery) -> FloatArray:
    return library.text_vector(query.text or "", model=query.options.model)


def _embed_upload(library: Library, query: SearchQuery, gate: DecodeGate) -> FloatArray:
    image = query.image or b""
    try:
        with gate.admit(image):
            return library.query_vector(image, model=query.options.model)
    except ImageDecodeError as exc:
        raise type(exc)("from the upload", exc.reason) from None


def _search_vector(library: Library, vector: FloatArray, query: SearchQuery) -> list[Hit]:
    options = query.options
    return library.search_vector(
        vector, options.k, min_score=options.min_score, folders=options.folders, model=options.model
    )


def _search_indexed(library: Library, query: SearchQuery) -> list[Hit]:
    options = query.options
    return library.search_id(
        _image_id(library, query),
        options.k,
        min_score=options.min_score,
        folders=options.folders,
        model=options.model,
    )


def _image_id(library: Library, query: SearchQuery) -> int:
    if query.image_id is not None:
        return query.image_id
    path = query.path or ""
    if not Path(path).is_absolute():
        raise BadRequestError(f"give the absolute path of an indexed image, not {path!r}")
    info = library.find(path)
    if info is None:
        raise NotIndexedError(f"{path} is not an indexed image; upload it to search with it")
    return info.id
