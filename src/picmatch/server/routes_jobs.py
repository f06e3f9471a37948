"""POST /api/index starts indexing a folder inside an allowed root; GET /api/jobs/{id} polls it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request

from picmatch.server.auth import require_token
from picmatch.server.http_errors import NotFoundError
from picmatch.server.paths import indexable_folder
from picmatch.server.routes_library import allowed_roots
from picmatch.server.schemas import ErrorBody, IndexRequest, JobCreated, JobResponse
from picmatch.server.state import StateDep
from picmatch.server.work_limits import run_limited

router = APIRouter(prefix="/api", tags=["indexing"], dependencies=[Depends(require_token)])


@router.post(
    "/index",
    status_code=202,
    response_model=JobCreated,
    responses={
        403: {"model": ErrorBody, "description": "outside the allowed roots"},
        404: {"model": ErrorBody, "description": "the path does not exist"},
    },
)
async def start_index(body: IndexRequest, request: Request, state: StateDep) -> JobCreated:
    """Index a folder in the background (incremental); poll the returned job for progress."""
    allowed = [Path(p) for p in allowed_roots(state)]
    folder = await run_limited(state.limits.files, indexable_folder, body.path, allowed)
    job = state.jobs.submit(str(folder))
    return JobCreated(job_id=job.id, url=str(request.url_for("get_job", job_id=job.id).path))


@router.get("/jobs/{job_id}", response_model=JobResponse, responses={404: {"model": ErrorBody}})
async def get_job(job_id: str, state: StateDep) -> JobResponse:
    """State and progress of an indexing job, with its report once done."""
    job = state.jobs.get(job_id)
    if job is None:
        raise NotFoundError(
            f"no indexing job {job_id[:40]!r}; jobs are kept until the server stops"
        )
    return JobResponse.of(job)
