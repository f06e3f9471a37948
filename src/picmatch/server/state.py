"""What the app holds while it runs: one per app, built in the lifespan, never module-level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from picmatch.config import Settings
from picmatch.library import Library
from picmatch.server.jobs import JobManager
from picmatch.server.thumbnails import ThumbnailCache
from picmatch.server.work_limits import WorkLimits


@dataclass(frozen=True)
class ServerState:
    settings: Settings
    library: Library
    jobs: JobManager
    thumbnails: ThumbnailCache
    limits: WorkLimits  # how many threads each kind of blocking work may use


def get_state(request: Request) -> ServerState:
    state = request.app.state.picmatch
    if not isinstance(state, ServerState):
        raise RuntimeError("the picmatch app state is missing; was the lifespan run?")
    return state


StateDep = Annotated[ServerState, Depends(get_state)]
