"""Peak memory of `picmatch index` stays far below the size of the files it reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imagegen import synthetic
from tests.procs import cli_env, picmatch_command

pytestmark = [pytest.mark.model, pytest.mark.e2e]

GIB = 1 << 30

_MEASURE = """
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": run.returncode, "out": run.stdout, "err": run.stderr, "peak": peak}))
"""


def peak_rss(command: list[str], env: dict[str, str]) -> tuple[int, str, str, int]:
    """Run `command`; (exit code, stdout, stderr, peak RSS in bytes of it and its children)."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    data = json.loads(result.stdout)
    return data["rc"], data["out"], data["err"], data["peak"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_first_index_of_a_huge_file_never_holds_it_in_memory(
    tmp_path: Path, model_cache: Path, workers: str
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):  # enough files for the worker pool
        synthetic(i).save(folder / f"p{i}.jpg", quality=90)
    huge = folder / "huge.jpg"
    synthetic(9).save(huge, quality=90)
    with huge.open("r+b") as file:
        file.truncate(GIB)  # a real JPEG followed by 1 GiB of zeros (sparse on disk)
    env = cli_env(tmp_path / "lib", model_cache)

    rc, out, err, peak = peak_rss(
        picmatch_command("index", str(folder), "-q", "--workers", workers), env
    )
    assert rc == 0, err
    assert "added 5" in out
    assert peak < GIB // 2, f"peak RSS {peak / 1e6:.0f} MB while indexing a 1 GiB file"
