"""GET /api/duplicates (groups, paged), POST /api/duplicates/move and /undo, GET .../actions.

Moves are behind the token like every API call, touch only indexed files inside the library's
roots, and only move into a folder inside an allowed root. Undo takes the name of a manifest in
the library's own `dupes-actions/` folder, never a path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from picmatch._sys import display_path, path_from_display
from picmatch.duplicates import Tier
from picmatch.library import Library
from picmatch.server.auth import require_token
from picmatch.server.http_errors import ForbiddenPathError, InvalidRequestError, NotFoundError
from picmatch.server.paths import real_roots, servable_file
from picmatch.server.routes_library import allowed_roots
from picmatch.server.schemas import ErrorBody, ImageId, PathText, parse_image_id
from picmatch.server.state import ServerState, StateDep

router = APIRouter(prefix="/api", tags=["duplicates"], dependencies=[Depends(require_token)])

MAX_GROUPS = 500
_MANIFEST_NAME = re.compile(r"^[A-Za-z0-9._-]{1,120}\.json$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "missing or wrong token",
        403: "a file or the target folder is outside the allowed roots",
        404: "no such image or manifest",
        422: "invalid fields",
    }.items()
}


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[ImageId] = Field(min_length=1, max_length=10_000, description="images to move")
    move_to: PathText = Field(description="absolute folder inside an allowed root")


class UndoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest: str = Field(description="a manifest name from GET /api/duplicates/actions")


@router.get("/duplicates", responses=_ERRORS)
async def duplicates(
    state: StateDep,
    tier: Annotated[Tier, Query(description="exact, copy or similar")] = Tier.COPY,
    folder: Annotated[PathText | None, Query(description="only images inside")] = None,
    min_score: Annotated[float | None, Query(ge=-1.0, le=1.0)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS)] = 50,
) -> dict[str, Any]:
    """Near-duplicate groups, largest first, each with its keeper first and every member's
    evidence against the keeper (embedding score, hash distance). Changes nothing."""
    folders = [path_from_display(folder)] if folder else []
    report = await run_in_threadpool(
        state.library.duplicates, tier.value, min_score=min_score, folders=folders
    )
    body = report.to_dict()
    body["total_groups"] = len(report.groups)
    body["groups"] = body["groups"][offset : offset + limit]
    body["offset"], body["limit"] = offset, limit
    return body


@router.post("/duplicates/move", responses=_ERRORS)
async def move(request: MoveRequest, state: StateDep) -> dict[str, Any]:
    """Move these indexed images into `move_to` (relative paths kept); returns the manifest
    name that undoes it."""
    return await run_in_threadpool(_move, state, request)


@router.post("/duplicates/undo", responses=_ERRORS)
async def undo(request: UndoRequest, state: StateDep) -> dict[str, Any]:
    """Reverse an earlier move (or link) by its manifest name."""
    manifest = _manifest_path(state.library, request.manifest)
    result = await run_in_threadpool(state.library.dupe_actions().undo, manifest)
    return result.to_dict() | {"manifest": manifest.name}


@router.get("/duplicates/actions", responses=_ERRORS)
async def actions(state: StateDep) -> dict[str, Any]:
    """Earlier actions, newest first: manifest name, kind, files, whether undone."""
    return {"actions": await run_in_threadpool(_list_actions, state.library)}


def _move(state: ServerState, request: MoveRequest) -> dict[str, Any]:
    lib = state.library
    target = _allowed_target(state, request.move_to)
    paths = []
    for text in request.ids:
        info = lib.image_info(parse_image_id(text))
        if info is None:
            raise NotFoundError(f"no image with id {text} in this library")
        if servable_file(info.path, lib.roots) is None:
            raise ForbiddenPathError(
                f"{display_path(info.path)} is not a file inside the library's roots"
            )
        paths.append(info.path)
    result = lib.dupe_actions().move(paths, target)
    body = result.to_dict()
    body["manifest"] = Path(result.manifest).name if result.manifest else None
    return body


def _allowed_target(state: ServerState, text: str) -> Path:
    path = Path(path_from_display(text))
    if not path.is_absolute():
        raise InvalidRequestError(f"give an absolute folder, not {text!r}")
    real = path.resolve()
    roots = real_roots(Path(r) for r in allowed_roots(state))
    if not any(real.is_relative_to(root) for root in roots):
        names = ", ".join(display_path(str(r)) for r in roots) or "none"
        raise ForbiddenPathError(
            f"{text} is outside the folders this server may write to ({names})"
        )
    if real.exists() and not real.is_dir():
        raise InvalidRequestError(f"{text} is a file, not a folder")
    return real


def _manifest_path(lib: Library, name: str) -> Path:
    if not _MANIFEST_NAME.match(name):
        raise InvalidRequestError(f"{name[:60]!r} is not a manifest name")
    path = lib.dupe_actions().folder / name
    if not path.is_file():
        raise NotFoundError(f"no action manifest named {name}")
    return path


def _list_actions(lib: Library) -> list[dict[str, Any]]:
    found = []
    for path in sorted(lib.dupe_actions().folder.glob("*.json"), reverse=True):
        try:
            data = json.loads(path.read_text("utf-8"))
            entries = data["actions"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append(
            {
                "manifest": path.name,
                "kind": entries[0]["kind"] if entries else "",
                "files": len(entries),
                "move_to": display_path(data["move_to"]) if data.get("move_to") else None,
                "created": data.get("created"),
                "undone": bool(data.get("undone")),
            }
        )
    return found
