"""Command-line adapter over `Library`. Errors become one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType
from typing import Any, NoReturn

from picmatch import __version__
from picmatch._sys import display_path
from picmatch.config import Settings, load_settings
from picmatch.errors import ConfigError, PicmatchError, StoreError, disk_full_message

Handler = Callable[[argparse.Namespace, Settings], int]


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C (committed work stays, workers are shut down)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    with _sigterm_stops(getattr(args, "resumable", False)):
        return _run(args)


@contextmanager
def _sigterm_stops(enabled: bool) -> Iterator[None]:
    """While enabled, SIGTERM raises `Terminated` in the main thread (`serve` leaves its own)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(_overrides(args))
        code: int = args.handler(args, settings)
        return code
    except PicmatchError as exc:
        print(f"picmatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("picmatch: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Terminated:
        print("picmatch: stopped (SIGTERM); run the same command again to resume", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a write that no layer translated: say at least what to do
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"picmatch: error: {disk_full_message(exc.filename or 'the library')}", file=sys.stderr
        )
        return StoreError.exit_code


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr (no usage dump), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="picmatch", description="Find similar images in your folders, offline.")
    parser.add_argument("--version", action="version", version=f"picmatch {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    common = _Parser(add_help=False)
    common.add_argument(
        "--library", metavar="DIR", help="library folder (default: $PICMATCH_LIBRARY or per-user)"
    )

    p = commands.add_parser("index", parents=[common], help="index folders (incremental)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to index")
    p.add_argument(
        "--model",
        metavar="SPEC",
        help="efficientnet-lite0 (default), clip:OWNER/NAME (text search too) or onnx:REPO_OR_PATH;"
        " on an existing library, adds or updates that model's vector space only",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="store of a new library: milvus://HOST:PORT[/DB] (default: SQLite inside it); "
        "credentials go in PICMATCH_STORE_TOKEN",
    )
    p.add_argument("--workers", type=_positive_int, help="decode processes (default: CPUs)")
    p.add_argument("--batch-size", type=_positive_int, help="images per model call")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--json", action="store_true", help="print the report (every skipped file) as JSON"
    )
    p.set_defaults(handler=_cmd_index, resumable=True)  # SIGTERM stops it like Ctrl-C

    p = commands.add_parser(
        "search", parents=[common], help="find images similar to IMAGE, or matching --text"
    )
    p.add_argument("image", metavar="IMAGE", nargs="?", help="an image file, indexed or not")
    p.add_argument("--text", metavar="TEXT", help='a text query, e.g. "a red bicycle" (clip:)')
    p.add_argument("--model", metavar="SPEC", help="which model's vectors (default: the first)")
    p.add_argument("--top", "-k", type=_positive_int, default=10, help="results (default 10)")
    p.add_argument("--min-score", type=_score, help="only results with cosine >= S (-1..1)")
    p.add_argument(
        "--in",
        dest="folders",
        action="append",
        default=[],
        metavar="FOLDER",
        help="only results inside FOLDER (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON array, nothing else")
    p.set_defaults(handler=_cmd_search)

    p = commands.add_parser("info", parents=[common], help="show the library's stats")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_info)

    p = commands.add_parser(
        "remove", parents=[common], help="drop folders or files from the library"
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(handler=_cmd_remove)

    p = commands.add_parser(
        "eval", parents=[common], help="measure how well this library finds edited copies"
    )
    p.add_argument("--sample", type=_positive_int, default=50, help="images to edit (default 50)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sample and edits")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_eval)

    from picmatch.cli_models import add_models_command

    add_models_command(commands, common)

    from picmatch.cli_dupes import add_parser as add_dupes

    add_dupes(commands, common, _score)
    commands.choices["dupes"].set_defaults(handler=_cmd_dupes)

    p = commands.add_parser("serve", parents=[common], help="start the web page and HTTP API")
    p.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_positive_int, help="port (default 8000)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (or $PICMATCH_TOKEN)")
    p.add_argument(
        "--allowed-root",
        dest="allowed_roots",
        action="append",
        metavar="FOLDER",
        help="a folder the API may index (repeatable; default: the library's roots)",
    )
    p.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="another host name the server answers to, as in the Host header (repeatable; "
        "default: only 127.0.0.1, localhost, [::1] and --host; '*' turns the check off)",
    )
    p.set_defaults(handler=_cmd_serve)

    from picmatch.cli_map import add_map_command

    add_map_command(commands, common)
    commands.choices["map"].set_defaults(handler=_cmd_map)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "library", "model", "store", "workers", "batch_size", "host", "port", "token",
        "allowed_roots", "allowed_hosts",
    )  # fmt: skip
    return {n: getattr(args, n, None) for n in names}


def _open(settings: Settings, *, create: bool, quiet: bool = False) -> Any:
    """The library; a hub model fetched on first use shows a progress line on a terminal."""
    from picmatch.cli_models import DownloadLine
    from picmatch.library import open_with_settings

    progress = DownloadLine(enabled=not quiet and sys.stderr.isatty())
    return open_with_settings(settings, create=create, download_progress=progress)


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from picmatch.cli_progress import IndexProgressBar, print_report, report_json, save_report

    with _open(settings, create=True, quiet=args.quiet) as lib:
        lib.load_models()  # a hub model downloads here, before the indexing progress
        with IndexProgressBar(enabled=not args.quiet and sys.stderr.isatty()) as bar:
            report = lib.index(args.paths, progress=bar.update)
        text = report_json(report, lib.count())
        saved = save_report(text, lib.path)
        if args.json:
            print(text)
        else:
            print_report(report, lib.count(), saved)
    return 0


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    if (args.image is None) == (args.text is None):
        raise ConfigError("give an IMAGE or --text TEXT to search with (one of them)")
    score, folders = args.min_score, args.folders
    with _open(settings, create=False) as lib:
        if args.text is not None:
            hits = lib.search_text(args.text, args.top, min_score=score, folders=folders)
        else:
            hits = lib.search(args.image, args.top, min_score=score, folders=folders)
    if args.json:
        json.dump(
            [{"path": display_path(h.path), "score": round(h.score, 6)} for h in hits], sys.stdout
        )
        sys.stdout.write("\n")
        return 0
    if not hits:
        print("no results" + (" above --min-score" if args.min_score is not None else ""))
    for hit in hits:
        print(f"{hit.score:.4f}  {display_path(hit.path)}")
    return 0


def _cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings, create=False) as lib:
        stats = lib.stats()
    stats = replace(stats, roots=tuple(display_path(r) for r in stats.roots))
    if args.json:
        json.dump(stats.__dict__, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"library   {stats.path}")
    print(f"model     {stats.model}  {_params(stats.params)}")
    for other in stats.models[1:]:
        print(f"model     {other}  (also)")
    print(f"store     {stats.store}")
    print(f"images    {stats.images}")
    print(f"size      {_human_bytes(stats.store_bytes)}")
    if stats.index:
        print(f"index     {_index_line(stats.index)}")
    for root in stats.roots or ("(none yet)",):
        print(f"root      {root}")
    return 0


def _index_line(index: dict[str, object]) -> str:
    """`ivf-sq8, 1,000,000 vectors, 1.3 GB in memory, recall@10 0.97 (measured), nprobe 96`"""
    parts = [str(index.get("kind"))]
    if isinstance(index.get("vectors"), int):
        parts.append(f"{index['vectors']:,} vectors")
    memory = index.get("memory_bytes")
    if isinstance(memory, int):
        parts.append(f"{_human_bytes(memory)} in memory")
    if "recall_at_10" in index:
        how = "exact" if index.get("kind") == "exact" else "measured at build"
        parts.append(f"recall@10 {index['recall_at_10']} ({how})")
    if "nprobe" in index:
        parts.append(f"{index['lists']} lists, {index['nprobe']} probed")
    return ", ".join(parts)


def _cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _open(settings, create=False) as lib:
        removed = lib.remove(args.paths)
        print(f"removed {removed} image(s); {lib.count()} left in the library")
    return 0


def _cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from picmatch.cli_eval import run_eval

    with _open(settings, create=False) as lib:
        return run_eval(lib, args)


def _cmd_dupes(args: argparse.Namespace, settings: Settings) -> int:
    from picmatch.cli_dupes import run_dupes

    with _open(settings, create=False) as lib:
        return run_dupes(lib, args)


def _cmd_map(args: argparse.Namespace, settings: Settings) -> int:
    from picmatch.cli_map import run_map

    with _open(settings, create=False) as lib:
        return run_map(lib, args)


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from picmatch.server.run import serve

    serve(settings)
    return 0


def _params(params: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between -1 and 1, got {text!r}"
        ) from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between -1 and 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
