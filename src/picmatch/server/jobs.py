"""Indexing jobs started over HTTP: run one at a time on a background thread, polled by id.

Jobs run one after another so two never write the same library at once; searches go on while a
job runs. On shutdown, a running job is cancelled at its next progress report (everything it
stored so far stays, and indexing the same folder again resumes it) and queued jobs are dropped.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from picmatch.errors import PicmatchError
from picmatch.indexer import IndexReport, Progress, ProgressCallback

log = logging.getLogger("picmatch.server")

IndexRunner = Callable[[str, ProgressCallback], IndexReport]
"""Index one path, reporting progress: `lambda path, progress: library.index([path], ...)`."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Job:
    id: str
    path: str
    state: JobState
    phase: str | None = None
    done: int = 0
    total: int = 0
    report: IndexReport | None = None
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None


class JobCancelledError(Exception):
    """Raised from the progress callback to stop a running job."""


class JobManager:
    """Queue of indexing jobs; keeps the last `keep` of them for polling."""

    def __init__(self, run: IndexRunner, *, keep: int = 100) -> None:
        self._run = run
        self._keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="picmatch-index")

    def submit(self, path: str) -> Job:
        job = Job(secrets.token_hex(8), path, JobState.QUEUED, created_at=time.time())
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._pool.submit(self._execute, job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def shutdown(self) -> None:
        """Cancel the running job, drop queued ones, wait for the worker thread."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state in (JobState.QUEUED, JobState.RUNNING):
                    self._finish(job.id, JobState.CANCELLED, error="the server stopped")

    def _execute(self, job_id: str) -> None:
        job = self.get(job_id)
        if job is None or self._stopping.is_set():
            return
        self._replace(job_id, lambda j: dataclasses.replace(j, state=JobState.RUNNING))
        try:
            report = self._run(job.path, lambda p: self._on_progress(job_id, p))
        except JobCancelledError:
            self._locked_finish(job_id, JobState.CANCELLED, error="the server stopped")
        except PicmatchError as exc:
            self._locked_finish(job_id, JobState.FAILED, error=str(exc))
        except Exception:
            log.exception("indexing job %s (%s) failed", job_id, job.path)
            self._locked_finish(job_id, JobState.FAILED, error="internal error; see the server log")
        else:
            self._locked_finish(job_id, JobState.DONE, report=report)

    def _on_progress(self, job_id: str, progress: Progress) -> None:
        if self._stopping.is_set():
            raise JobCancelledError
        self._replace(
            job_id,
            lambda j: dataclasses.replace(
                j, phase=str(progress.phase), done=progress.done, total=progress.total
            ),
        )

    def _replace(self, job_id: str, change: Callable[[Job], Job]) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = change(job)

    def _locked_finish(
        self,
        job_id: str,
        state: JobState,
        *,
        report: IndexReport | None = None,
        error: str | None = None,
    ) -> None:
        with self._lock:
            self._finish(job_id, state, report=report, error=error)

    def _finish(
        self,
        job_id: str,
        state: JobState,
        *,
        report: IndexReport | None = None,
        error: str | None = None,
    ) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.state not in (
            JobState.DONE,
            JobState.FAILED,
            JobState.CANCELLED,
        ):
            self._jobs[job_id] = dataclasses.replace(
                job, state=state, report=report, error=error, finished_at=time.time()
            )

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.finished_at is not None]
        for job_id in finished[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job_id]
