"""JobManager (queueing, failures, cancellation at shutdown) and the access-log token filter."""

from __future__ import annotations

import logging
import threading
import time

from picmatch.errors import NotIndexedError
from picmatch.indexer import IndexReport, Phase, Progress, ProgressCallback
from picmatch.server.jobs import Job, JobManager, JobState
from picmatch.server.run import RedactTokens, _is_loopback


def _wait(manager: JobManager, job_id: str, *states: JobState) -> Job:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = manager.get(job_id)
        if job is not None and job.state in states:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {states}: {manager.get(job_id)}")


def test_jobs_run_one_at_a_time_and_report_progress() -> None:
    running = 0
    overlap = False
    lock = threading.Lock()

    def run(path: str, progress: ProgressCallback) -> IndexReport:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap |= running > 1
        for done in range(1, 4):
            progress(Progress(Phase.EMBED, done, 3))
            time.sleep(0.01)
        with lock:
            running -= 1
        return IndexReport(added=len(path))

    manager = JobManager(run)
    jobs = [manager.submit(f"/photos/{'x' * n}") for n in range(3)]
    finished = [_wait(manager, j.id, JobState.DONE) for j in jobs]
    manager.shutdown()
    assert not overlap
    assert [j.report.added if j.report else None for j in finished] == [8, 9, 10]
    assert all((j.phase, j.done, j.total) == ("embed", 3, 3) for j in finished)


def test_a_failing_job_records_its_error() -> None:
    def run(path: str, progress: ProgressCallback) -> IndexReport:
        raise NotIndexedError(f"not found: {path}; check the path and try again")

    def crash(path: str, progress: ProgressCallback) -> IndexReport:
        raise RuntimeError("secret detail")

    manager = JobManager(run)
    job = _wait(manager, manager.submit("/gone").id, JobState.FAILED)
    assert job.error == "not found: /gone; check the path and try again"
    manager.shutdown()
    manager = JobManager(crash)
    job = _wait(manager, manager.submit("/x").id, JobState.FAILED)
    assert job.error is not None and "secret" not in job.error
    manager.shutdown()


def test_shutdown_cancels_the_running_job_and_drops_queued_ones() -> None:
    started = threading.Event()

    def run(path: str, progress: ProgressCallback) -> IndexReport:
        started.set()
        while True:  # a long run that reports progress
            progress(Progress(Phase.HASH, 1, 100))
            time.sleep(0.01)

    manager = JobManager(run)
    first, queued = manager.submit("/a"), manager.submit("/b")
    assert started.wait(5)
    manager.shutdown()
    for job_id in (first.id, queued.id):
        job = manager.get(job_id)
        assert job is not None and job.state == JobState.CANCELLED


def test_old_finished_jobs_are_forgotten() -> None:
    manager = JobManager(lambda path, progress: IndexReport(), keep=3)
    ids = []
    for n in range(6):
        ids.append(manager.submit(f"/{n}").id)
        _wait(manager, ids[-1], JobState.DONE)
    manager.shutdown()
    assert manager.get(ids[0]) is None and manager.get(ids[-1]) is not None


def test_tokens_are_redacted_from_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/images/1/file?size=256&token=abc%20d&x=1", "1.1", 200),
        None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert "abc" not in record.getMessage()
    assert "size=256&token=***&x=1" in record.getMessage()


def test_loopback_hosts() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")
