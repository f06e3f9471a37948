"""Read a search request: a multipart image upload, or JSON naming an indexed image."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from picmatch.server.http_errors import (
    BadRequestError,
    InvalidRequestError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
    describe_validation_errors,
)
from picmatch.server.schemas import SearchOptions, SearchRequest, parse_image_id

CHUNK = 1024 * 1024
MAX_FORM_FIELDS = 60  # k, min_score and up to 50 folders
MAX_FIELD_BYTES = 64 * 1024

Options = TypeVar("Options", bound=SearchOptions)


@dataclass(frozen=True)
class SearchQuery:
    """Exactly one of `image` (uploaded bytes), `image_id` or `path` is set."""

    options: SearchOptions
    image: bytes | None = None
    image_id: int | None = None
    path: str | None = None
    text: str | None = None


async def read_search_query(request: Request, max_upload_bytes: int) -> SearchQuery:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _from_json(request)
    if content_type == "multipart/form-data":
        return await _from_form(request, max_upload_bytes)
    raise UnsupportedMediaTypeError(
        "send the query image as multipart/form-data (field 'image'), "
        'or JSON {"id": ...} / {"path": ...} for an indexed image'
    )


async def _from_json(request: Request) -> SearchQuery:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("the request body is not valid JSON") from None
    except RecursionError:
        raise BadRequestError("the request body is JSON nested too deeply") from None
    body = _validate(SearchRequest, data)
    if body.text is not None:
        return SearchQuery(_options(body), text=body.text)
    if body.path is not None:
        return SearchQuery(_options(body), path=body.path)
    return SearchQuery(_options(body), image_id=parse_image_id(body.id or ""))


async def _from_form(request: Request, max_upload_bytes: int) -> SearchQuery:
    form = await request.form(
        max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES
    )
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError(
                "no image: send the query image as a file in the multipart field 'image'"
            )
        options = _validate(SearchOptions, _form_options(form))
        image = await _read_limited(upload, max_upload_bytes)
    finally:
        await form.close()
    if not image:
        raise InvalidRequestError("the uploaded image is empty")
    return SearchQuery(options, image=image)


def _form_options(form: FormData) -> dict[str, object]:
    options: dict[str, object] = {}
    for name in ("k", "min_score", "model"):
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            options[name] = value.strip()
    folders = [f for f in form.getlist("folders") if isinstance(f, str) and f.strip()]
    if folders:
        options["folders"] = folders
    return options


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """The whole upload, refusing it as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _validate(model: type[Options], data: object) -> Options:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(
            "invalid request: " + describe_validation_errors(exc.errors())
        ) from None


def _options(body: SearchRequest) -> SearchOptions:
    return SearchOptions(k=body.k, min_score=body.min_score, folders=body.folders, model=body.model)
