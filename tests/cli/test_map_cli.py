"""`picmatch map` in-process: builds, then refreshes incrementally; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from picmatch.cli import main
from tests.map_images import write_families

pytestmark = pytest.mark.model


def test_map_builds_then_places_only_new_images(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_families(tmp_path / "photos", 4)
    assert main(["index", str(tmp_path / "photos"), "-q"]) == 0
    capsys.readouterr()
    assert main(["map"]) == 0
    assert "map: projected all, removed 0; 8 images on the map" in capsys.readouterr().out
    assert list((env / "map").glob("*/points.npz"))
    assert list((env / "map").glob("*/sheet-0000.jpg"))

    write_families(tmp_path / "photos", 1, start=50)
    assert main(["index", str(tmp_path / "photos"), "-q"]) == 0
    capsys.readouterr()
    assert main(["map", "-q"]) == 0
    assert "map: placed 2 new, removed 0; 10 images on the map" in capsys.readouterr().out
    assert main(["map", "--full"]) == 0
    assert "map: projected all" in capsys.readouterr().out


def test_map_of_a_missing_library_says_how_to_make_one(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("picmatch: error: no picmatch library in") and "picmatch index" in err


def test_a_map_that_cannot_be_written_is_a_one_line_error(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_families(tmp_path / "photos", 2)
    assert main(["index", str(tmp_path / "photos"), "-q"]) == 0
    (env / "map").write_text("a file where the map folder should be")
    capsys.readouterr()
    assert main(["map", "-q"]) == 7
    err = capsys.readouterr().err
    assert err.startswith("picmatch: error: cannot write the map in ") and "writable" in err
    assert "Traceback" not in err
