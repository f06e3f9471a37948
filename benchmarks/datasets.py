"""Build the evaluation sets of ``shared/eval/PROTOCOL.md`` from Debian packages.

    python benchmarks/datasets.py [--out DIR] [--cache DIR] [--force]

``apt-get download`` fetches gnome-backgrounds, mate-backgrounds and tuxpaint-stamps-default
into the cache (default ``benchmarks/data/cache``); ``dpkg-deb -x`` unpacks them (no root
install). Writes, deterministically, ``OUT/neardup/`` (``index/originals``,
``index/distractors``, ``heldout``, ``queries/<edit>/<id>.png``) and ``OUT/category/``
(``images/<label>/<id>.png``), each with a ``manifest.json`` (see ``picmatch.eval.sets``).

Rules where the protocol leaves room:

* Originals: raster wallpapers only (SVG/XML skipped), composited on white, longer side
  at most 1024 (Lanczos), stored as PNG. Dropped as flat when the grey-level std of the
  whole image or of its central half (1/4 to 3/4 of each side) is below 12.
* Variants: in path order, a candidate is dropped when the correlation of the gradient
  magnitudes of its and a kept original's 64x64 grey thumbnails (aspect ignored) is at
  least 0.35 (blind to colour and light/dark inversion; catches resolutions and
  recolourings), or when both are GNOME light/dark twins (``X-l``/``X-d``, one folder).
* Held out: max(8, 10 %) of the originals (seeded); their copies are the negative queries.
  Queries: every edit of ``TRANSFORMS`` on every original with ``edit_rng(SEED, id, edit)``,
  stored as PNG so the JPEG edits keep exactly their own artefacts.
* Distractors: every raster tuxpaint stamp on white, at most 1024.
* Category: label = the stamp's first two folders (``animals/mammals``; stamps with fewer
  folders left out), labels with >= 8 images, at most 80 each (seeded sample).

Checksums cover the sorted file list under ``neardup/`` and ``category/`` and the contents.
Unreadable files are skipped and listed in the manifests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from picmatch.eval.sets import (
    MANIFEST_VERSION,
    CategorySet,
    ItemKind,
    NearDupSet,
    load_category_set,
    load_neardup_set,
    read_manifest,
)
from picmatch.eval.transforms import TRANSFORMS, edit_rng

DEFAULT_OUT = Path(__file__).resolve().parent / "data"
SEED = 20240601
PACKAGES = ("gnome-backgrounds", "mate-backgrounds", "tuxpaint-stamps-default")
WALLPAPER_PACKAGES = PACKAGES[:2]
WALLPAPER_DIR, STAMP_DIR = "usr/share/backgrounds", "usr/share/tuxpaint/stamps"
RASTER_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".jxl", ".avif", ".tif", ".tiff", ".bmp"}
MAX_SIDE = 1024
FLAT_STD = 12.0
VARIANT_CORRELATION = 0.35
HOLDOUT_SHARE, HOLDOUT_MIN = 0.10, 8
CLASS_MIN, CLASS_CAP = 8, 80
_TWIN = re.compile(r"^(?P<base>.+)-[ld]$")


def load_neardup(root: Path = DEFAULT_OUT) -> NearDupSet:
    """The near-duplicate set under ``root/neardup`` (``root`` is the ``--out`` folder)."""
    return load_neardup_set(Path(root) / "neardup")


def load_category(root: Path = DEFAULT_OUT) -> CategorySet:
    """The category set under ``root/category`` (``root`` is the ``--out`` folder)."""
    return load_category_set(Path(root) / "category")


def _download(package: str, cache: Path) -> Path:
    if not any(cache.glob(f"{package}_*.deb")):
        command = ["apt-get", "download", package]
        done = subprocess.run(command, cwd=cache, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (run `apt-get update`?): {done.stderr}")
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one {package} .deb in {cache}, found {len(debs)}")
    return debs[0]


def fetch_packages(cache: Path) -> dict[str, Path]:
    """Each package's unpacked root, downloading and unpacking it once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    roots: dict[str, Path] = {}
    for package in PACKAGES:
        deb = _download(package, cache)
        root = cache / "root" / deb.stem
        if not root.is_dir():
            partial = root.with_name(root.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True)
            partial.rename(root)
        roots[package] = root
    return roots


def _make_id(prefix: str, relative: Path) -> str:
    name = "-".join(relative.with_suffix("").parts)
    return prefix + re.sub(r"[^A-Za-z0-9._-]", "_", name)


# --- images -----------------------------------------------------------------------------


def load_on_white(path: Path) -> Image.Image:
    """RGB pixels composited on white, longer side at most MAX_SIDE."""
    with Image.open(path) as image:
        image.draft("RGB", (2 * MAX_SIDE, 2 * MAX_SIDE))  # JPEG only; keeps >= 2x the target
        rgba = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    flat.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return flat


def grey_std(image: Image.Image) -> tuple[float, float]:
    """Grey-level std of the whole image and of its central half."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    height, width = grey.shape
    centre = grey[
        height // 4 : max(height // 4 + 1, 3 * height // 4),
        width // 4 : max(width // 4 + 1, 3 * width // 4),
    ]
    return float(grey.std()), float(centre.std())


def structure_signature(image: Image.Image) -> npt.NDArray[np.float64]:
    """Zero-mean, unit-norm gradient magnitude of the 64x64 grey thumbnail."""
    grey = np.asarray(image.convert("L").resize((64, 64), Image.Resampling.BOX), np.float64)
    magnitude = np.hypot(np.diff(grey, axis=1)[:-1], np.diff(grey, axis=0)[:, :-1]).ravel()
    centred = magnitude - magnitude.mean()
    unit: npt.NDArray[np.float64] = centred / (np.linalg.norm(centred) + 1e-12)
    return unit


@dataclass(frozen=True)
class _Candidate:
    id: str
    source: str
    image: Image.Image
    signature: npt.NDArray[np.float64]


def _variant_reason(candidate: _Candidate, kept: _Candidate) -> str | None:
    correlation = float(candidate.signature @ kept.signature)
    if correlation >= VARIANT_CORRELATION:
        return f"variant of {kept.source} (structure correlation {correlation:.2f})"
    twin_a, twin_b = _TWIN.match(candidate.id), _TWIN.match(kept.id)
    if twin_a and twin_b and twin_a["base"] == twin_b["base"]:
        return f"light/dark twin of {kept.source} (structure correlation {correlation:.2f})"
    return None


def select_originals(roots: dict[str, Path]) -> tuple[list[_Candidate], list[dict[str, str]]]:
    """The distinct, non-flat wallpapers, and (source, reason) for every file left out."""
    kept: list[_Candidate] = []
    dropped: list[dict[str, str]] = []
    for package in WALLPAPER_PACKAGES:
        base = roots[package] / WALLPAPER_DIR
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            source = f"{package}:{path.relative_to(base).as_posix()}"
            if path.suffix.lower() not in RASTER_SUFFIXES:
                dropped.append({"source": source, "reason": f"not raster ({path.suffix})"})
                continue
            reason, candidate = _consider(path, source, _make_id("", path.relative_to(base)))
            if candidate is not None:
                reason = next(filter(None, (_variant_reason(candidate, k) for k in kept)), None)
                if reason is None:
                    kept.append(candidate)
            if reason is not None:
                dropped.append({"source": source, "reason": reason})
    return kept, dropped


def _consider(path: Path, source: str, image_id: str) -> tuple[str | None, _Candidate | None]:
    try:
        image = load_on_white(path)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"unreadable: {error}", None
    whole, centre = grey_std(image)
    if min(whole, centre) < FLAT_STD:
        return f"flat (grey std {whole:.1f}, central half {centre:.1f})", None
    return None, _Candidate(image_id, source, image, structure_signature(image))


# --- writing ------------------------------------------------------------------------------


def _save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", compress_level=3)  # 3x faster than 6, ~12 % larger


def _copy_on_white(job: tuple[Path, Path]) -> str | None:
    source, target = job
    try:
        _save_png(load_on_white(source), target)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"{source.name}: {error}"
    return None


def _edit_copies(job: tuple[Path, str, Path]) -> None:
    original, image_id, queries = job
    with Image.open(original) as opened:
        image = opened.convert("RGB")
    for edit, transform in TRANSFORMS.items():
        copy = transform(image, edit_rng(SEED, image_id, edit))
        _save_png(copy, queries / edit / f"{image_id}.png")


def _run_parallel(function: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(function, jobs))


def _copy_stamps(
    stamps: list[tuple[Path, dict[str, str]]], folder: Path
) -> tuple[list[dict[str, str]], list[str]]:
    """Copy each (source, manifest entry) on white to the entry's path; written, errors."""
    errors = _run_parallel(_copy_on_white, [(src, folder / e["path"]) for src, e in stamps])
    written = [entry for (_, entry), error in zip(stamps, errors, strict=True) if not error]
    return written, [error for error in errors if error]


def _stamp_files(roots: dict[str, Path]) -> list[tuple[Path, str, tuple[str, ...]]]:
    """Every raster stamp: (path, id, folders below the stamps directory)."""
    base = roots["tuxpaint-stamps-default"] / STAMP_DIR
    return [
        (path, _make_id("stamp-", path.relative_to(base)), path.relative_to(base).parts[:-1])
        for path in sorted(base.rglob("*"))
        if path.suffix.lower() in RASTER_SUFFIXES
    ]


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _hold_out(originals: list[_Candidate]) -> set[str]:
    n_held = max(HOLDOUT_MIN, round(HOLDOUT_SHARE * len(originals)))
    if n_held >= len(originals):
        raise RuntimeError(f"only {len(originals)} originals: too few to hold {n_held} out")
    return set(random.Random(f"{SEED}:holdout").sample(sorted(c.id for c in originals), n_held))


def build_neardup(roots: dict[str, Path], folder: Path, debs: dict[str, str]) -> None:
    originals, dropped = select_originals(roots)
    held = _hold_out(originals)
    where = {c.id: "heldout" if c.id in held else "index/originals" for c in originals}
    for candidate in originals:
        _save_png(candidate.image, folder / where[candidate.id] / f"{candidate.id}.png")
    jobs = [(folder / where[c.id] / f"{c.id}.png", c.id, folder / "queries") for c in originals]
    _run_parallel(_edit_copies, jobs)
    distractors, skipped = _copy_stamps(
        [
            (path, {"id": i, "path": f"index/distractors/{i}.png", "kind": ItemKind.DISTRACTOR})
            for path, i, _ in _stamp_files(roots)
        ],
        folder,
    )
    originals_entries = [
        {"id": c.id, "path": f"{where[c.id]}/{c.id}.png", "kind": ItemKind.ORIGINAL}
        for c in originals
        if c.id not in held
    ]
    index = originals_entries + distractors
    queries = [
        {
            "path": f"queries/{edit}/{c.id}.png",
            "edit": edit,
            "source": c.id,
            "original": None if c.id in held else c.id,
        }
        for c in originals
        for edit in TRANSFORMS
    ]
    manifest = {"index": index, "queries": queries, "heldout": sorted(held), "dropped": dropped}
    _write_json(folder / "manifest.json", _header(debs) | manifest | {"skipped": skipped})


def _header(debs: dict[str, str]) -> dict[str, object]:
    return {"version": MANIFEST_VERSION, "seed": SEED, "packages": debs}


def _category_choice(roots: dict[str, Path]) -> list[tuple[Path, dict[str, str]]]:
    """(source, manifest entry) of the stamps in the category set."""
    by_label: dict[str, list[tuple[Path, str]]] = {}
    for path, image_id, folders in _stamp_files(roots):
        if len(folders) >= 2:
            by_label.setdefault(f"{folders[0]}/{folders[1]}", []).append((path, image_id))
    chosen = []
    for label, members in sorted(by_label.items()):
        if len(members) < CLASS_MIN:
            continue
        sampler = random.Random(f"{SEED}:category:{label}")
        for path, i in sorted(sampler.sample(members, min(CLASS_CAP, len(members)))):
            chosen.append((path, {"id": i, "path": f"images/{label}/{i}.png", "label": label}))
    return chosen


def build_category(roots: dict[str, Path], folder: Path, debs: dict[str, str]) -> None:
    items, skipped = _copy_stamps(_category_choice(roots), folder)
    _write_json(folder / "manifest.json", _header(debs) | {"items": items, "skipped": skipped})


# --- checksums, summary, command line -------------------------------------------------------


def checksums(out: Path = DEFAULT_OUT) -> dict[str, object]:
    """sha256 of the sorted file list under neardup/ and category/, and of their contents."""
    names = sorted(
        path.relative_to(out).as_posix()
        for part in ("neardup", "category")
        for path in (out / part).rglob("*")
        if path.is_file()
    )
    content = hashlib.sha256()
    for name in names:
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
        content.update(f"{name}\0{digest}\n".encode())
    listing = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {"files": len(names), "file_list_sha256": listing, "content_sha256": content.hexdigest()}


def summarize(out: Path = DEFAULT_OUT) -> dict[str, object]:
    """Counts of both sets (from their manifests) and their checksums."""
    neardup, category = load_neardup(out), load_category(out)
    raw, raw_category = read_manifest(neardup.folder), read_manifest(category.folder)
    kinds = Counter(item.kind.value for item in neardup.index)
    return {
        "packages": raw["packages"],
        "originals_indexed": kinds[ItemKind.ORIGINAL.value],
        "originals_held_out": len(raw["heldout"]),
        "dropped": dict(Counter(re.split(r" \(| of |:", e["reason"])[0] for e in raw["dropped"])),
        "distractors": kinds[ItemKind.DISTRACTOR.value],
        "queries_positive": len(neardup.positives),
        "queries_negative": len(neardup.negatives),
        "edits": len(neardup.edits),
        "category_classes": len(category.labels),
        "category_images": len(category.items),
        "category_per_class": dict(sorted(Counter(i.label for i in category.items).items())),
        "skipped": len(raw["skipped"]) + len(raw_category["skipped"]),
        **checksums(out),
    }


def build(out: Path, cache: Path, force: bool = False) -> dict[str, object]:
    """Build both sets unless their manifests already exist (or ``force``); then summarize."""
    folders = (out / "neardup", out / "category")
    if force or not all((folder / "manifest.json").is_file() for folder in folders):
        roots = fetch_packages(cache)
        debs = {package: root.name for package, root in roots.items()}
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        build_neardup(roots, folders[0], debs)
        build_category(roots, folders[1], debs)
    summary = summarize(out)
    _write_json(out / "build.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_OUT / "cache", help=".deb cache")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = build(args.out, args.cache, args.force)
    for key, value in summary.items():
        print(f"{key:>20}: {value}")
    print(f"{'seconds':>20}: {time.perf_counter() - started:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
