"""Progress bar and end-of-run summary of `picmatch index`, drawn with rich on stderr."""

from __future__ import annotations

import sys
from collections import Counter
from types import TracebackType

from picmatch._sys import display_path
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


def print_report(report: IndexReport, total: int) -> None:
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
