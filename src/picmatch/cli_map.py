"""`picmatch map`: build or refresh the library map."""

from __future__ import annotations

import argparse
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from picmatch.map_store import MapProgress


def add_map_command(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "map",
        parents=[common],
        help="build or refresh the map of the library (shown at /map by picmatch serve)",
    )
    p.add_argument("--full", action="store_true", help="project every image again")
    p.add_argument(
        "--html", metavar="OUT", help="also write a self-contained map page into folder OUT"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run_map(library: Any, args: argparse.Namespace) -> int:
    from picmatch.map_store import refresh_map

    with MapProgressBar(enabled=not args.quiet and sys.stderr.isatty()) as bar:
        report = refresh_map(library, full=args.full, progress=bar.update)
    how = "projected all" if report.full else f"placed {report.added} new"
    print(
        f"map: {how}, removed {report.removed}; {report.total} images on the map "
        f"in {report.seconds:.1f} s"
    )
    if args.html:
        from picmatch.map_export import export_map

        out = export_map(library, args.html)
        print(f"wrote {out / 'index.html'}: open it in a browser, or publish the folder")
    return 0


class MapProgressBar:
    """One rich task per step of `refresh_map`, on stderr."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> MapProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description:<16}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
            )
            self._bar.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def update(self, progress: MapProgress) -> None:
        if self._bar is None:
            return
        task = self._tasks.get(progress.step)
        if task is None:
            task = self._bar.add_task(progress.step, total=None)
            self._tasks[progress.step] = task
        self._bar.update(task, completed=progress.done, total=progress.total or None)
