"""Progress bar (rich, on stderr), end-of-run summary and JSON report of `picmatch index`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType

from picmatch._sys import atomic_write, display_path
from picmatch.indexer import IndexReport, Phase, Progress

_LABELS = {
    Phase.WAIT: "waiting for another run on this library",
    Phase.SCAN: "scanning",
    Phase.HASH: "checking changes",
    Phase.EMBED: "embedding",
    Phase.INDEX: "search index",
}
MAX_LISTED_SKIPS = 20


class IndexProgressBar:
    """Receives `Progress` callbacks; one task per phase, with files/s and ETA."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: object | None = None
        self._tasks: dict[Phase, int] = {}

    def __enter__(self) -> IndexProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description:<16}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._bar.__enter__()  # type: ignore[attr-defined]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)  # type: ignore[attr-defined]

    def update(self, progress: Progress) -> None:
        bar = self._bar
        if bar is None or progress.phase == Phase.DONE:
            return
        task = self._tasks.get(progress.phase)
        if task is None:
            task = bar.add_task(_LABELS[progress.phase], total=None, rate="")  # type: ignore[attr-defined]
            self._tasks[progress.phase] = task
        total = progress.total or None
        bar.update(task, completed=progress.done, total=total)  # type: ignore[attr-defined]
        speed = bar.tasks[task].speed  # type: ignore[attr-defined]
        if speed:
            bar.update(task, rate=f"{speed:.1f} files/s")  # type: ignore[attr-defined]


REPORT_FILE = "last-index-report.json"


def report_json(report: IndexReport, total: int) -> str:
    """The run's report as one line of JSON: counts, and every skipped file with its reason.

    A name's bytes that are not UTF-8 are shown as ``\\xNN``, as everywhere in the CLI
    (`display_path`; `path_from_display` gives back the path).
    """
    data = {
        "added": report.added,
        "unchanged": report.unchanged,
        "updated": report.updated,
        "removed": report.removed,
        "moved": report.moved,
        "embedded": report.embedded,
        "seconds": round(report.seconds, 3),
        "images": total,
        "skipped": [
            {"path": display_path(path), "reason": display_path(reason)}
            for path, reason in report.skipped
        ],
    }
    return json.dumps(data)


def save_report(text: str, library: Path) -> Path | None:
    """Keep the report as `REPORT_FILE` in the library; None where it cannot be written."""
    target = library / REPORT_FILE
    try:
        atomic_write(target, text.encode("utf-8") + b"\n")
    except OSError:
        return None  # the run's data is committed: a missing report is no reason to fail
    return target


def print_report(report: IndexReport, total: int, saved: Path | None = None) -> None:
    print(
        f"added {report.added}, unchanged {report.unchanged}, updated {report.updated}, "
        f"removed {report.removed}, moved {report.moved}, skipped {len(report.skipped)} "
        f"in {report.seconds:.1f} s; {total} images in the library"
    )
    if report.embedded and report.embed_seconds > 0:
        rate = report.embedded / report.embed_seconds
        print(f"embedded {report.embedded} images in {report.embed_seconds:.1f} s ({rate:.1f}/s)")
    if not report.skipped:
        return
    reasons = Counter(reason for _, reason in report.skipped)
    print("skipped files:")
    for path, reason in report.skipped[:MAX_LISTED_SKIPS]:
        print(f"  {display_path(path)}: {display_path(reason)}")
    if len(report.skipped) > MAX_LISTED_SKIPS:
        more = len(report.skipped) - MAX_LISTED_SKIPS
        summary = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
        print(f"  ... and {more} more ({summary})")
        where = f"in {display_path(str(saved))}" if saved else "with picmatch index --json"
        print(f"  the full list is {where}")
