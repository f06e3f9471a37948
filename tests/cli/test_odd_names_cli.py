"""The CLI prints names that are not valid UTF-8 safely (text and JSON), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from picmatch._sys import display_path
from picmatch.cli import main
from tests.unit.test_odd_names import _odd_tree

pytestmark = pytest.mark.model


def test_cli_prints_odd_names_safely(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, odd_dir, odd_file = _odd_tree(tmp_path)
    broken = root / os.fsdecode(b"broken-\xff.jpg")
    broken.write_bytes(b"not an image")
    assert main(["index", str(root), "-q"]) == 0
    out = capsys.readouterr().out
    assert "added 7" in out and display_path(str(broken)) in out

    assert main(["search", str(odd_file), "-k", "1", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["path"] == display_path(str(odd_file))
    assert main(["search", str(odd_file), "-k", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith("IMG_\\xff\\xfe.jpg")

    shutil.rmtree(odd_dir)
    assert main(["index", str(root), "-q"]) == 0
    assert "removed 2" in capsys.readouterr().out
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 5
