"""The bad-file corpus: a run over it exits 0, lists every bad entry with its reason, finds every
good image by searching for it, prints no traceback; bad files as queries get a one-line error."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from picmatch import Library
from picmatch._sys import display_path
from picmatch.cli import main
from picmatch.indexer import Phase, Progress
from tests.badfiles import Corpus, make_corpus
from tests.procs import cli_env, picmatch_command

pytestmark = [pytest.mark.model, pytest.mark.e2e]

OpenLib = Callable[..., Library]


def _check_bad_entries_listed(corpus: Corpus, skipped: dict[str, str], kinds: set[str]) -> None:
    for entry in corpus.bad:
        if entry.kind not in kinds:
            continue
        reason = skipped.get(display_path(str(entry.path)))
        assert reason is not None, f"{entry.kind} not listed: {entry.path}"
        assert any(r in reason for r in entry.reasons), f"{entry.kind}: {reason}"


def test_index_run_over_the_corpus_with_changes_mid_run(open_lib: OpenLib, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path)
    assert len(corpus.kinds()) >= 30

    def mutate_after_scan(p: Progress) -> None:
        if p.phase == Phase.SCAN and p.total:
            corpus.mutate()

    lib = open_lib(workers=2)
    report = lib.index([corpus.root], progress=mutate_after_scan)
    skipped = {display_path(path): reason for path, reason in report.skipped}
    _check_bad_entries_listed(corpus, skipped, corpus.kinds())
    bad_paths = {display_path(str(e.path)) for e in corpus.bad}
    assert set(skipped) == bad_paths, "only the bad entries are skipped"
    assert lib.count() == len(corpus.good)

    for entry in corpus.good:
        assert entry.query is not None
        hits = lib.search(entry.query, k=2)
        assert hits[0].path == str(entry.path), entry.kind
        assert hits[0].score > 0.99, entry.kind


def test_cli_over_the_corpus_exits_0_and_bad_queries_fail_cleanly(
    tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    corpus = make_corpus(tmp_path)
    library = tmp_path / "lib"
    env = cli_env(library, model_cache)
    run = subprocess.run(
        picmatch_command("index", str(corpus.root), "--json", "-q"),
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    report = json.loads(run.stdout)
    skipped = {e["path"]: e["reason"] for e in report["skipped"]}
    static = {e.kind for e in corpus.bad if not e.kind.endswith("after-scan")}
    _check_bad_entries_listed(corpus, skipped, static)
    assert report["images"] == len(corpus.good) + len(corpus.bad) - len(static)

    for name in ("PICMATCH_LIBRARY", "PICMATCH_CACHE_DIR", "PICMATCH_CONFIG"):
        monkeypatch.setenv(name, env[name])
    capsys.readouterr()
    for entry in corpus.bad:
        if entry.kind in static:
            code = main(["search", str(entry.path)])
            out, err = capsys.readouterr()
            assert code != 0 and out == "", entry.kind
            assert err.startswith("picmatch: error: ") and err.count("\n") == 1, (entry.kind, err)
