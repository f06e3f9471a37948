"""`picmatch eval`: the command's progress bar (rich, on stderr) and its printed report."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from picmatch.eval.user_eval import ProgressCallback, UserEvalReport
    from picmatch.library import Library


def run_eval(lib: Library, args: argparse.Namespace) -> int:
    """Evaluate `lib` with the command's options and print the report on stdout."""
    from picmatch.eval.user_eval import evaluate_library

    with _progress_bar(enabled=not args.quiet and sys.stderr.isatty()) as progress:
        report = evaluate_library(lib, sample=args.sample, seed=args.seed, progress=progress)
    if args.json:
        json.dump(asdict(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report, args.seed))
    return 0


@contextmanager
def _progress_bar(*, enabled: bool) -> Iterator[ProgressCallback | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "querying edited copies",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
    ) as bar:
        task = bar.add_task("eval", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def format_report(report: UserEvalReport, seed: int) -> str:
    """The per-edit table, µAP and the 1 % false-positive threshold, as plain text."""
    copies = sum(e.queries for e in report.per_edit)
    lines = [
        f"{report.sampled} of {report.images} images, {len(report.per_edit)} edited copies "
        f"each ({copies} queries), seed {seed}",
        "",
        f"{'edit':<14} {'queries':>7} {'recall@1':>9} {'recall@10':>10}",
    ]
    for e in report.per_edit:
        lines.append(f"{e.edit:<14} {e.queries:>7} {e.recall_at_1:>9.3f} {e.recall_at_10:>10.3f}")
    lines.append(f"{'all':<14} {copies:>7} {report.recall_at_1:>9.3f} {report.recall_at_10:>10.3f}")
    lines += [
        "",
        f"µAP {report.micro_ap:.3f}",
        f"score threshold for 1% false positives: {report.threshold:.4f} "
        f"({report.recall_at_threshold:.1%} of the copies are found first above it)",
        f"to list only likely copies: picmatch search IMAGE --min-score {_ceil3(report.threshold)}",
    ]
    if report.skipped:
        path, reason = report.skipped[0]
        lines.append(f"skipped {len(report.skipped)} unreadable image(s), e.g. {path}: {reason}")
    return "\n".join(lines)


def _ceil3(score: float) -> str:
    """The threshold rounded up to 3 decimals, so it never lets more false positives in."""
    return f"{math.ceil(score * 1000) / 1000:.3f}"
