"""The CLI in-process: output formats, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from picmatch.cli import main
from tests.imagegen import crop_center, photo

pytestmark = pytest.mark.model


def test_index_search_json_info_remove(
    env: Path, photo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_main_commands(
        env, photo_dir, tmp_path, capsys, "index     exact, 14 vectors", "recall@10 1.0 (exact)"
    )


def check_main_commands(
    env: Path,
    photo_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *index_line: str,
) -> None:
    """index, search (JSON and text), info and remove on the library `env` names."""
    assert main(["index", str(photo_dir)]) == 0
    out = capsys.readouterr().out
    assert "added 14, unchanged 0, updated 0, removed 0, moved 0, skipped 0" in out

    query = tmp_path / "q.jpg"
    crop_center(photo("coffee"), 0.5).save(query)
    assert main(["search", str(query), "--top", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert len(hits) == 3 and set(hits[0]) == {"path", "score"}
    assert hits[0]["path"] == str(photo_dir / "coffee.jpg")
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]

    assert main(["search", str(query), "--min-score", "0.99", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["search", str(query), "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith(str(photo_dir / "coffee.jpg"))

    assert main(["info"]) == 0
    info = capsys.readouterr().out
    assert "efficientnet-lite0" in info and "images    14" in info and str(photo_dir) in info
    assert all(part in info for part in index_line), info

    assert main(["remove", str(photo_dir / "coffee.jpg")]) == 0
    assert "removed 1 image(s); 13 left" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_codes(
    env: Path, photo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", str(photo_dir / "moon.jpg")]) == 3  # no library yet
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "picmatch index" in err

    assert main(["index", str(photo_dir), "-q"]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    assert main(["search", str(bad)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("picmatch: error: cannot read image") and err.count("\n") == 1
    assert main(["search", str(tmp_path / "missing.jpg")]) == 4
    assert "not found" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exc:
        main(["search", str(photo_dir / "moon.jpg"), "--top", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--top/-k: must be at least 1" in err and err.count("\n") == 1
