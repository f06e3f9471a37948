"""`picmatch dupes`: list near-duplicate groups, then (only with --apply) move or link, or undo."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import TYPE_CHECKING, Any

from picmatch._sys import display_path
from picmatch.duplicates import KEEPER_RULE, TIER_THRESHOLDS, Tier
from picmatch.errors import PicmatchError

if TYPE_CHECKING:
    from picmatch.dupe_actions import ActionReport
    from picmatch.library import Library
    from picmatch.results import DupeReport

EPILOG = f"""\
tiers (what a pair must show):
  exact    same bytes, or same size and identical perceptual hashes
  copy     {TIER_THRESHOLDS[Tier.COPY].explain()}
           (resized, recompressed, cropped, filtered, mirrored, rotated, captioned, grey copies)
  similar  {TIER_THRESHOLDS[Tier.SIMILAR].explain()}
           (the same scene, e.g. burst shots)
score: cosine similarity of the two images' embeddings (1 = the same picture to the model).
distance: bits that differ between the 64-bit perceptual hashes (mirror-aware; 0 = same look).
{KEEPER_RULE}.
Nothing changes without --apply; picmatch never deletes a file; every action can be undone.
"""


def add_parser(commands: Any, common: argparse.ArgumentParser, score: Any) -> None:
    p = commands.add_parser(
        "dupes",
        parents=[common],
        help="list near-duplicate groups; move or hardlink the extra copies (reversible)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tier", choices=[t.value for t in Tier], default="copy", help="default copy")
    p.add_argument("--min-score", type=score, help="a pair counts on its score alone from S")
    p.add_argument(
        "--in", dest="folders", action="append", default=[], metavar="FOLDER", help="only here"
    )
    p.add_argument(
        "--keep-in", action="append", default=[], metavar="FOLDER", help="never move from here"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the groups as JSON")
    out.add_argument("--csv", metavar="FILE", help="write one row per image to FILE")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--move-to", metavar="DIR", help="move the non-keepers to DIR (dry run)")
    act.add_argument("--link", action="store_true", help="hardlink exact copies to the keeper")
    act.add_argument("--undo", metavar="MANIFEST", help="reverse an earlier --apply")
    p.add_argument("--apply", action="store_true", help="really do --move-to or --link")


def run_dupes(lib: Library, args: argparse.Namespace) -> int:
    if args.undo:
        _print_action("undone", lib.dupe_actions().undo(args.undo), undo_hint=False)
        return 0
    report = lib.duplicates(
        args.tier, min_score=args.min_score, folders=args.folders, keep_in=args.keep_in
    )
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.csv:
        _write_csv(report, args.csv)
        print(f"wrote {sum(len(g.members) for g in report.groups)} rows to {args.csv}")
    else:
        print(format_report(report))
    if args.move_to or args.link:
        return _act(lib, report, args)
    return 0


def format_report(report: DupeReport) -> str:
    lines = [
        f"{report.tier} tier: {report.rule}",
        f"{report.keeper_rule}",
        f"{report.images} images, {len(report.groups)} groups, {report.redundant} extra copies "
        f"({report.seconds:.2f} s" + (f", {report.hashed} hashed" if report.hashed else "") + ")",
    ]
    if report.groups:
        lines.append(f"{'':6} {'score':>6} {'dist':>4} {'pixels':>11} {'size':>9}  path")
    for number, group in enumerate(report.groups, 1):
        lines.append(f"group {number} ({len(group.members)} images)")
        for m in group.members:
            role = "keep" if m.keeper else ("kept" if m.protected else "copy")
            dist = "-" if m.distance is None else str(m.distance)
            pixels = f"{m.width}x{m.height}"
            lines.append(
                f"  {role:<4} {m.score:6.3f} {dist:>4} {pixels:>11} {_size(m.size):>9}  "
                f"{display_path(m.path)}"
            )
    return "\n".join(lines)


def _act(lib: Library, report: DupeReport, args: argparse.Namespace) -> int:
    if args.link:
        pairs = [
            (m.path, g.keeper.path)
            for g in report.groups
            for m in g.members
            if m.same_bytes and not m.keeper and not m.protected
        ]
        if not args.apply:
            print(f"dry run: would hardlink {len(pairs)} byte-identical copies to their keepers")
            print("add --apply to do it")
            return 0
        _print_action("linked", lib.dupe_actions().link(pairs), undo_hint=True)
        return 0
    paths = [m.path for g in report.groups for m in g.members if not m.keeper and not m.protected]
    if not args.apply:
        print(f"dry run: would move {len(paths)} files to {args.move_to} (keepers stay)")
        print("add --apply to do it")
        return 0
    _print_action("moved", lib.dupe_actions().move(paths, args.move_to), undo_hint=True)
    return 0


def _print_action(verb: str, result: ActionReport, *, undo_hint: bool) -> None:
    skipped = f", skipped {len(result.skipped)}" if result.skipped else ""
    print(f"{verb} {len(result.done)} files{skipped}")
    for path, reason in result.skipped[:20]:
        print(f"  skipped {display_path(path)}: {reason}")
    if undo_hint and result.manifest:
        print(f"undo with: picmatch dupes --undo {display_path(result.manifest)}")


def _write_csv(report: DupeReport, target: str) -> None:
    try:
        _write_rows(report, target)
    except OSError as exc:
        raise PicmatchError(f"cannot write {target}: {exc.strerror or exc}") from exc


def _write_rows(report: DupeReport, target: str) -> None:
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "role", "path", "score", "distance", "width", "height", "bytes"])
        for number, group in enumerate(report.groups, 1):
            for m in group.members:
                role = "keep" if m.keeper else ("kept" if m.protected else "copy")
                distance = "" if m.distance is None else m.distance
                writer.writerow(
                    [
                        number,
                        role,
                        display_path(m.path),
                        m.score,
                        distance,
                        m.width,
                        m.height,
                        m.size,
                    ]
                )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
