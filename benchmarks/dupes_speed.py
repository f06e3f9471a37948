"""Time to a first duplicate answer on a 5,000-image clip-art folder, next to the peers.

    python benchmarks/dupes_speed.py [--data /tmp/eval-data] [--work /tmp/picmatch-dupes-speed]
                                     [--images 5000] [--out benchmarks/results]

The folder: the tuxpaint stamps of the protocol's set (``benchmarks/datasets.py``), each saved
as PNG, and edited copies of them (half size, grey, 80 % crop, mirror, JPEG-quality-60 PNG) in
turn until there are ``--images`` files. Measured in one run, each from a cold start on the
same folder: ``picmatch`` (a new library: index, then ``duplicates()``; then a second
``duplicates()`` on the unchanged library), czkawka's Python binding at its defaults, and
imagededup's PHash and DHash (encode + find_duplicates at their defaults, hashing modules
only). A peer that is not installed is left out. Prints a table; writes ``dupes_speed.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from dupes_peers import imagededup_runs
from picmatch import open_library

EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "half": lambda im: im.resize((max(1, im.width // 2), max(1, im.height // 2))),
    "grey": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "crop80": lambda im: im.crop(
        (im.width // 10, im.height // 10, im.width - im.width // 10, im.height - im.height // 10)
    ),
    "mirror": ImageOps.mirror,
    "jpeg60": lambda im: _jpeg(im, 60),
}


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def build_folder(data: Path, folder: Path, count: int) -> int:
    done = folder / ".complete"
    if done.exists():
        return sum(1 for p in folder.rglob("*.png"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stamps = sorted((data / "neardup" / "index" / "distractors").glob("*.png"))
    written = 0
    for edit in ("", *EDITS):
        for stamp in stamps:
            if written >= count:
                break
            image = Image.open(stamp).convert("RGB")
            name = stamp.stem + (f"-{edit}" if edit else "") + ".png"
            (EDITS[edit](image) if edit else image).save(folder / name)
            written += 1
    done.write_text("ok\n")
    return written


def time_picmatch(folder: Path, library: Path) -> dict[str, float]:
    shutil.rmtree(library, ignore_errors=True)
    started = time.perf_counter()
    with open_library(library) as lib:
        report = lib.index([folder])
        indexed = time.perf_counter() - started
        groups = lib.duplicates()
        first = time.perf_counter() - started
    with open_library(library) as lib:  # a later run, in a new process state: nothing changed
        again_started = time.perf_counter()
        lib.duplicates()
        again = time.perf_counter() - again_started
    return {
        "seconds": first,
        "index_seconds": indexed,
        "group_seconds": first - indexed,
        "rerun_seconds": again,
        "groups": len(groups.groups),
        "embedded": report.embedded,
    }


def time_czkawka(folder: Path) -> dict[str, float] | None:
    try:
        from czkawka import ImageSimilarity
    except ImportError:
        print("czkawka: not installed, left out")
        return None
    started = time.perf_counter()
    finder = ImageSimilarity()
    finder.set_directories([folder])
    groups = finder.find_similar()
    return {"seconds": time.perf_counter() - started, "groups": len(groups)}


def time_imagededup(folder: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    runs = imagededup_runs({}, folder)  # loads the hashing modules (no torch)
    if runs is None:
        return out
    from imagededup.methods.hashing import DHash, PHash

    for cls in (PHash, DHash):
        started = time.perf_counter()
        found = cls(verbose=False).find_duplicates(image_dir=folder)
        out[f"imagededup {cls.__name__}"] = {
            "seconds": time.perf_counter() - started,
            "groups": sum(1 for v in found.values() if v),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/eval-data"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/picmatch-dupes-speed"))
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    folder = args.work / "images"
    count = build_folder(args.data, folder, args.images)
    results: dict[str, Any] = {"images": count, "cpus": len(os.sched_getaffinity(0))}
    methods: dict[str, Any] = {"picmatch (index + dupes)": time_picmatch(folder, args.work / "lib")}
    czkawka = time_czkawka(folder)
    if czkawka is not None:
        methods["czkawka"] = czkawka
    methods.update(time_imagededup(folder))
    results["methods"] = methods
    base = methods["picmatch (index + dupes)"]["seconds"]
    print(f"{count} PNG images, {results['cpus']} CPUs")
    print("| method | seconds to first answer | picmatch / method | groups |")
    print("|---|---|---|---|")
    for name, m in methods.items():
        print(f"| {name} | {m['seconds']:.1f} | {base / m['seconds']:.1f} | {m['groups']} |")
    p = methods["picmatch (index + dupes)"]
    print(
        f"picmatch: index {p['index_seconds']:.1f} s, grouping {p['group_seconds']:.2f} s, "
        f"second dupes run on the unchanged library {p['rerun_seconds']:.2f} s"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dupes_speed.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
