"""A killed or terminated `picmatch index` leaves no decode worker behind, and resumes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.imagegen import synthetic
from tests.procs import (
    cli_env,
    descendants,
    kill_all,
    needs_proc,
    picmatch_command,
    stored_count,
    wait_gone,
)

pytestmark = [pytest.mark.model, pytest.mark.e2e, needs_proc]

IMAGES = 120


@pytest.fixture
def folder_and_env(tmp_path: Path, model_cache: Path) -> tuple[Path, Path, dict[str, str]]:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(IMAGES):
        synthetic(5000 + i, (800, 600)).save(folder / f"img{i:03d}.jpg", quality=90)
    library = tmp_path / "lib"
    env = cli_env(library, model_cache)
    first = subprocess.run(
        picmatch_command("index", str(folder / "img000.jpg"), "-q"),
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr  # the model is converted, the library made
    return folder, library, env


def _start_and_wait_for_embedding(
    folder: Path, library: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], set[int]]:
    """Start an index run, its output going to files (orphans holding a pipe would hang a
    reader), and return once it is embedding, with its decode workers."""
    logs = library.parent
    with open(logs / "out.txt", "wb") as out, open(logs / "err.txt", "wb") as err:
        proc = subprocess.Popen(
            picmatch_command("index", str(folder), "-q", "--workers", "2"),
            env=env, stdout=out, stderr=err,
        )  # fmt: skip
    deadline = time.monotonic() + 300
    workers: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        workers |= descendants(proc.pid)
        if stored_count(library) >= 12 and workers:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    assert workers, "the run should have decode workers"
    return proc, workers | descendants(proc.pid)


def test_sigkill_mid_embedding_leaves_no_worker_alive(
    folder_and_env: tuple[Path, Path, dict[str, str]],
) -> None:
    folder, library, env = folder_and_env
    proc, workers = _start_and_wait_for_embedding(folder, library, env)
    try:
        proc.kill()
        proc.wait(timeout=30)
        assert wait_gone(workers) == set(), "decode workers outlived the killed run"
        assert 1 < stored_count(library) < IMAGES, "the kill should land mid-run"
    finally:
        kill_all(workers)


def test_sigterm_stops_cleanly_and_the_run_resumes(
    folder_and_env: tuple[Path, Path, dict[str, str]],
) -> None:
    folder, library, env = folder_and_env
    proc, workers = _start_and_wait_for_embedding(folder, library, env)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert wait_gone(workers) == set(), "decode workers outlived the terminated run"
    finally:
        kill_all(workers)
    out, err = ((library.parent / name).read_text() for name in ("out.txt", "err.txt"))
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines() == [
        "picmatch: stopped (SIGTERM); run the same command again to resume"
    ]
    assert out == ""
    partial = stored_count(library)
    assert 1 < partial < IMAGES

    rerun = subprocess.run(
        picmatch_command("index", str(folder), "-q"),
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert stored_count(library) == IMAGES
    assert f"added {IMAGES - partial}, unchanged {partial}" in rerun.stdout
