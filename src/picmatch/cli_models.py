"""`picmatch models`: the cached models, their sizes, the library's vector spaces; `--drop`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from picmatch.config import Settings
from picmatch.errors import LibraryNotFoundError


@dataclass
class ModelRow:
    model: str
    cached_bytes: int | None  # None: nothing in the cache (a local path, or not fetched yet)
    text: bool
    space: str | None  # the library's space of this model
    images: int | None
    default: bool = False


class DownloadLine:
    """`DownloadProgress` as one self-rewriting line on stderr: file, MiB done, percent."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._shown: tuple[str, int] | None = None

    def __call__(self, name: str, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if not self.enabled or self._shown == (name, percent):
            return
        self._shown = (name, percent)
        mib = 1024 * 1024
        end = "\n" if done >= total else ""
        sys.stderr.write(
            f"\rdownloading {name}  {done / mib:.1f}/{total / mib:.1f} MiB  {percent:3d}%{end}"
        )
        sys.stderr.flush()


def add_models_command(commands: Any, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "models",
        parents=[common],
        help="list cached models and the library's vector spaces; --drop one",
    )
    p.add_argument("--drop", metavar="SPEC", help="remove the vector space of model SPEC")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    from picmatch.library import open_library

    try:
        lib = open_library(settings.library, create=False, cache_dir=settings.cache_dir)
    except LibraryNotFoundError:
        if args.drop:
            raise
        lib = None
    if args.drop:
        with lib:  # type: ignore[union-attr]
            removed = lib.drop_space(args.drop)  # type: ignore[union-attr]
        print(
            f"dropped the vector space of {args.drop} ({removed} images); its cached model "
            "files were kept (picmatch models lists them)"
        )
        return 0
    rows = model_rows(settings.cache_dir / "models", lib)
    if lib is not None:
        lib.close()
    if args.json:
        json.dump([asdict(r) for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_rows(rows)
    return 0


def model_rows(cache: Path, lib: Any) -> list[ModelRow]:
    """One row per model in the library or in the cache."""
    from picmatch.models.hub import cached_repos
    from picmatch.models.registry import split_spec
    from picmatch.spaces import text_capable

    cached: dict[str, int] = {}
    graphs = sorted(cache.glob("efficientnet-lite0-*.onnx")) if cache.is_dir() else []
    if graphs:
        cached["efficientnet-lite0"] = sum(p.stat().st_size for p in graphs)
    for repo in cached_repos(cache):
        cached[repo.repo] = repo.size_bytes
    rows: list[ModelRow] = []
    for i, space in enumerate(lib.spaces if lib is not None else []):
        scheme = split_spec(space.model)
        key = scheme[1].split("@")[0] if scheme else space.model
        rows.append(
            ModelRow(
                space.model,
                cached.pop(key, None),
                text_capable(space.model),
                space.name,
                lib.count(model=space.model),
                default=i == 0,
            )
        )
    rows += [ModelRow(name, size, False, None, None) for name, size in sorted(cached.items())]
    return rows


def print_rows(rows: list[ModelRow]) -> None:
    from picmatch.cli import _human_bytes

    if not rows:
        print("no models cached and no library yet")
        return
    width = max(len(r.model) for r in rows)
    print(f"{'MODEL':<{width}}  {'CACHED':>10}  TEXT  IN THIS LIBRARY")
    for r in rows:
        size = _human_bytes(r.cached_bytes) if r.cached_bytes is not None else "-"
        used = (
            f"{r.images} images" + (" (default)" if r.default else "")
            if r.space is not None
            else "not used"
        )
        print(f"{r.model:<{width}}  {size:>10}  {'yes' if r.text else 'no':<4}  {used}")
