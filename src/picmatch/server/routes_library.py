"""GET /api/health (no token needed) and GET /api/library (stats, model, roots)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from picmatch import __version__
from picmatch.server.auth import require_token
from picmatch.server.schemas import ErrorBody, HealthResponse, LibraryResponse
from picmatch.server.state import ServerState, StateDep
from picmatch.server.work_limits import run_limited

health_router = APIRouter(prefix="/api", tags=["library"])
router = APIRouter(prefix="/api", tags=["library"], dependencies=[Depends(require_token)])


@health_router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """Liveness check; needs no token and tells nothing about the library."""
    return HealthResponse(version=__version__)


@router.get("/library", response_model=LibraryResponse, responses={401: {"model": ErrorBody}})
async def library(state: StateDep) -> LibraryResponse:
    """What is indexed, with which model, and which folders the API may index."""
    return await run_limited(state.limits.store, _describe, state)


def _describe(state: ServerState) -> LibraryResponse:
    lib = state.library
    return LibraryResponse.of(
        lib.stats(),
        dim=lib.embedder.dim,
        allowed_roots=[str(p) for p in allowed_roots(state)],
        max_upload_bytes=state.settings.max_upload_bytes,
        version=__version__,
    )


def allowed_roots(state: ServerState) -> tuple[str, ...]:
    """--allowed-root folders if any were given, else the roots the library already has."""
    chosen = state.settings.allowed_roots or state.library.roots
    return tuple(str(p) for p in chosen)
