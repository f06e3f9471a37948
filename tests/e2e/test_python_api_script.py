"""The README's Python example as a user writes it: a plain script, no `__main__` guard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.imagegen import synthetic

pytestmark = [pytest.mark.model, pytest.mark.e2e]


def test_unguarded_script_indexes_with_worker_processes(tmp_path: Path, model_cache: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):  # enough files for the parallel decode pool
        synthetic(i).save(photos / f"{i}.jpg")
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(f"""
            from picmatch import open_library

            lib = open_library({str(tmp_path / "lib")!r}, cache_dir={str(model_cache)!r})
            report = lib.index([{str(photos)!r}])
            hits = lib.search({str(photos / "3.jpg")!r}, k=1)
            print(report.added, hits[0].path)
        """)
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["12", str(photos / "3.jpg")]
