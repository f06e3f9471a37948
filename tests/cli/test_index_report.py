"""Every skipped file can be listed: `picmatch index --json` and the library's report file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from picmatch.cli import main
from tests.imagegen import synthetic

pytestmark = pytest.mark.model


def _folder_with_bad_files(tmp_path: Path, bad: int) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        synthetic(i).save(folder / f"good{i}.jpg")
    for i in range(bad):
        (folder / f"bad{i:02d}.jpg").write_bytes(b"not an image at all" if i % 2 else b"")
    return folder


def test_json_report_lists_every_skipped_file(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder_with_bad_files(tmp_path, 30)
    assert main(["index", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert (report["added"], report["images"]) == (3, 3)
    reasons = {entry["path"]: entry["reason"] for entry in report["skipped"]}
    assert len(reasons) == 30
    assert reasons[str(folder / "bad00.jpg")] == "file is empty"
    assert reasons[str(folder / "bad01.jpg")] == "not an image or unsupported format"
    saved = json.loads((env / "last-index-report.json").read_text())
    assert saved == report


def test_summary_says_where_the_full_list_is(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder_with_bad_files(tmp_path, 25)
    assert main(["index", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("  ... and 5 more (")
    assert lines[-1] == f"  the full list is in {env / 'last-index-report.json'}"
    saved = json.loads((env / "last-index-report.json").read_text())
    assert len(saved["skipped"]) == 25
