"""`picmatch dupes` in-process: the listing, dry runs that change nothing, apply and undo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from picmatch.cli import main
from tests.imagegen import write_dupes

pytestmark = pytest.mark.model


def test_dupes_lists_groups_dry_runs_then_moves_and_undoes(
    env: Path, photo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dupes(photo_dir)
    assert main(["index", str(photo_dir)]) == 0
    capsys.readouterr()

    assert main(["dupes"]) == 0
    out = capsys.readouterr().out
    assert "27 images, 4 groups, 13 extra copies" in out
    assert "copy tier: a pair counts when its embedding score is >= " in out
    assert "keeper: inside --keep-in, then most pixels" in out
    assert "  keep  1.000    0     451x300" in out and str(photo_dir / "chelsea.jpg") in out

    review = tmp_path / "review"
    before = sorted(p.name for p in photo_dir.iterdir())
    assert main(["dupes", "--move-to", str(review)]) == 0
    assert "dry run: would move 13 files" in capsys.readouterr().out
    assert sorted(p.name for p in photo_dir.iterdir()) == before and not review.exists()

    assert main(["dupes", "--move-to", str(review), "--apply", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[: out.index("\nmoved") + 1])
    assert report["redundant"] == 13 and len(report["groups"]) == 4
    member = report["groups"][0]["members"][1]
    assert {"path", "score", "distance", "keeper", "same_bytes"} <= set(member)
    manifest = out.split("undo with: picmatch dupes --undo ")[1].strip()
    assert len(list(review.rglob("*.*"))) == 13

    assert main(["dupes", "--undo", manifest]) == 0
    assert capsys.readouterr().out.startswith("undone 13 files")
    assert sorted(p.name for p in photo_dir.iterdir()) == before

    rows = tmp_path / "dupes.csv"
    assert main(["dupes", "--tier", "exact", "--csv", str(rows)]) == 0
    table = list(csv.DictReader(rows.open()))
    assert [(r["group"], r["role"], Path(r["path"]).name) for r in table] == [
        ("1", "keep", "rocket.jpg"),
        ("1", "copy", "rocket-copy.jpg"),
    ]

    assert main(["dupes", "--tier", "exact", "--link"]) == 0
    assert "dry run: would hardlink 1 byte-identical copies" in capsys.readouterr().out
    assert (photo_dir / "rocket-copy.jpg").stat().st_nlink == 1


def test_dupes_errors_are_one_line(
    env: Path, photo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dupes"]) != 0
    assert "no picmatch library" in capsys.readouterr().err
    assert main(["index", str(photo_dir)]) == 0
    capsys.readouterr()
    assert main(["dupes", "--undo", str(photo_dir / "chelsea.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("picmatch: error:") and "not a picmatch dupes manifest" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["dupes", "--tier", "nearly"])
    assert exit_info.value.code == 2
    assert main(["dupes", "--csv", str(photo_dir / "nowhere" / "x.csv")]) != 0
    assert "cannot write" in capsys.readouterr().err
