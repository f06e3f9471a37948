"""SIGKILL `picmatch index` at random moments, re-run: the library ends exactly like a clean run's,
and no process of a killed run survives it (bounded form of benchmarks/crash_loop.py)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from benchmarks.crash_loop import (
    compare,
    crash_loop,
    index_command,
    library_state,
    make_images,
    make_queries,
    run_env,
)

from tests.procs import needs_proc

pytestmark = [pytest.mark.model, pytest.mark.e2e, needs_proc]


def test_random_sigkills_end_like_a_clean_run(tmp_path: Path, model_cache: Path) -> None:
    images = make_images(tmp_path / "photos", 100, seed=3)
    queries = make_queries(tmp_path / "queries", images, count=5)
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"

    kills = crash_loop(
        tmp_path / "photos", crashed, model_cache, kills=3, rng=random.Random(7),
        low=0.5, high=4.0, first_at_records=30,
    )  # fmt: skip
    assert [k.orphans for k in kills] == [0, 0, 0]
    assert kills[0].mid_run and 30 <= kills[0].records_after < 100
    command = index_command(tmp_path / "photos", clean, model_cache, 2)
    subprocess.run(command, env=run_env(model_cache, clean), check=True, capture_output=True)
    result = compare(
        library_state(clean, model_cache, queries), library_state(crashed, model_cache, queries)
    )
    assert result.clean_records == 100 + 2 * (25 - 5)  # two rounds of changes
    assert result.same, result
