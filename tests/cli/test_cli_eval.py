"""`picmatch eval` in-process, with the real model on a small generated library."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pytest

from picmatch import open_library
from picmatch.cli import main
from picmatch.eval.transforms import EDIT_NAMES
from picmatch.eval.user_eval import evaluate_library
from tests.imagegen import synthetic, write_photos

pytestmark = pytest.mark.model


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temp folder of its own, so the test can see what the command leaves there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def small_library(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    photos = tmp_path / "photos"
    write_photos(photos, ("chelsea", "coffee", "astronaut", "rocket"))
    synthetic(5).save(photos / "generated.png")
    assert main(["index", str(photos), "-q"]) == 0
    capsys.readouterr()
    return env


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_eval_prints_every_edit_and_a_threshold_and_leaves_no_trace(
    small_library: Path, private_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(small_library)
    assert main(["eval", "--sample", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 of 5 images, 17 edited copies each (34 queries), seed 3")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[3:21]}
    assert list(rows) == [*EDIT_NAMES, "all"]
    assert rows["all"][0] == "34" and all(r[0] == "2" for n, r in rows.items() if n != "all")
    assert float(rows["jpeg50"][1]) == 1.0  # a mild edit of a distinct photo is found first
    assert "score threshold for 1% false positives: " in out and "--min-score 0." in out
    assert snapshot(small_library) == before  # the library is only read
    assert list(private_tmp.iterdir()) == []  # the edited copies are gone


def test_eval_json_report_progress_and_temp_folder(
    small_library: Path, model_cache: Path, private_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--sample", "1", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["images"], report["sampled"], len(report["per_edit"])) == (5, 1, 17)
    assert 0.0 <= report["recall_at_threshold"] <= report["recall_at_10"] <= 1.0
    assert -1.0 <= report["threshold"] <= 1.0

    calls: list[tuple[int, int]] = []
    copies_seen: list[int] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        copies_seen.append(len(list(private_tmp.glob("picmatch-eval-*/*.png"))))

    with open_library(small_library, create=False, cache_dir=model_cache) as lib:
        count = lib.count()
        again = evaluate_library(lib, sample=1, progress=progress)
        assert lib.count() == count
    assert calls == [(n, 17) for n in range(1, 18)]
    assert copies_seen == list(range(1, 18))  # the copies were files in the temp folder...
    assert list(private_tmp.iterdir()) == []  # ...which is gone
    assert again.threshold == pytest.approx(report["threshold"])  # same seed, same copies


def test_eval_needs_two_images(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic(1).save(tmp_path / "only.png")
    assert main(["index", str(tmp_path / "only.png"), "-q"]) == 0
    capsys.readouterr()
    assert main(["eval"]) == 2
    err = capsys.readouterr().err
    assert "at least 2 images" in err and err.count("\n") == 1


def test_eval_without_a_library_says_how_to_make_one(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval"]) == 3
    assert "picmatch index" in capsys.readouterr().err
