"""Duplicate groups on planted sets: picmatch next to hash and embedding baselines and peers.

    python benchmarks/dupes_quality.py [--data /tmp/eval-data] [--work /tmp/picmatch-dupes]
                                       [--distractors 150] [--out benchmarks/results]

``--data`` is the ``--out`` folder of ``benchmarks/datasets.py``. The planted sets
(``benchmarks/dupes_planted.py``) are indexed once into a library under ``--work`` (re-runs
reuse it). Every method groups each folder; a predicted pair is two images in one group, a
true pair two members of one planted group (an original and its copies). Pair precision,
recall and F1; per edit, the share of (original, copy) pairs found. Pairs between distractors
count as false. Each method's threshold is chosen on the ``six-tune`` folder (best F1) and
then applied unchanged to the other folders; ``six-test`` is the held-out figure.

Methods, in one run: ``picmatch dupes`` (the shipped copy and similar tiers, through the
Library API; the copy tier's thresholds are the swept best on ``six-tune``), the
same grouping swept (``both, star``), embeddings alone (star groups, and connected
components), pHash alone (connected components), and where installed the peers imagededup
(PHash, DHash; its hashing modules only, so it runs without torch), czkawka (the PyPI
binding) and difPy. Prints markdown tables; writes ``dupes_quality.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets import _stamp_files, fetch_packages
from dupes_peers import PEERS, PeerRun
from dupes_planted import PlantedItem, build
from picmatch import open_library
from picmatch.dupe_pairs import candidate_pairs
from picmatch.duplicates import TIER_THRESHOLDS, Pairs, Thresholds, Tier, accepted, star_groups
from picmatch.library import Library

Pair = tuple[str, str]
TUNE = "six-tune"
DISTRACTOR = "/distractors/"


@dataclass
class Folder:
    name: str
    items: list[PlantedItem]
    paths: list[str]
    pairs: Pairs  # loose candidates with both evidences

    def truth(self) -> set[Pair]:
        groups: dict[str, list[str]] = {}
        for item in self.items:
            if item.group is not None:
                groups.setdefault(item.group, []).append(str(item.path))
        return {_pair(a, b) for g in groups.values() for a, b in itertools.combinations(g, 2)}


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def pairs_of_groups(groups: Iterable[Sequence[str]]) -> set[Pair]:
    return {_pair(a, b) for g in groups for a, b in itertools.combinations(g, 2)}


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def scores(predicted: set[Pair], truth: set[Pair]) -> dict[str, float]:
    """Strict precision counts every predicted pair outside the planted groups as false;
    `precision_labelled` leaves out pairs of two distractors (clip-art siblings, such as two
    hand signs, that nobody labelled either way) and counts the rest."""
    hit = len(predicted & truth)
    p = hit / len(predicted) if predicted else 1.0
    r = hit / len(truth) if truth else 1.0
    labelled = {pair for pair in predicted if not all(DISTRACTOR in x for x in pair)}
    p_labelled = hit / len(labelled) if labelled else 1.0
    return {
        "precision": p,
        "recall": r,
        "f1": _f1(p, r),
        "precision_labelled": p_labelled,
        "f1_labelled": _f1(p_labelled, r),
        "pairs": len(predicted),
        "distractor_pairs": len(predicted) - len(labelled),
    }


def per_edit(predicted: set[Pair], folder: Folder) -> dict[str, float]:
    originals = {i.group: str(i.path) for i in folder.items if i.group and i.edit is None}
    found: dict[str, list[bool]] = {}
    for item in folder.items:
        if item.edit is not None and item.group in originals:
            pair = _pair(originals[item.group], str(item.path))
            found.setdefault(item.edit, []).append(pair in predicted)
    return {edit: float(np.mean(v)) for edit, v in sorted(found.items())}


# grouping methods over the candidate pairs


def components(n: int, pairs: Pairs) -> list[list[int]]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs.i.tolist(), pairs.j.tolist(), strict=True):
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(root(x), []).append(x)
    return [g for g in groups.values() if len(g) > 1]


Method = Callable[[Folder, Any], set[Pair]]


def both_star(folder: Folder, t: Thresholds) -> set[Pair]:
    chosen = folder.pairs.select(accepted(folder.pairs, t))
    groups = star_groups(len(folder.paths), chosen)
    return pairs_of_groups([[folder.paths[x] for x in g] for g in groups])


def embed_star(folder: Folder, strong: float) -> set[Pair]:
    return both_star(folder, Thresholds(strong, 2.0, -1))


def embed_components(folder: Folder, strong: float) -> set[Pair]:
    chosen = folder.pairs.select(folder.pairs.score >= strong)
    groups = components(len(folder.paths), chosen)
    return pairs_of_groups([[folder.paths[x] for x in g] for g in groups])


def phash_components(folder: Folder, distance: int) -> set[Pair]:
    chosen = folder.pairs.select(folder.pairs.distance <= distance)
    groups = components(len(folder.paths), chosen)
    return pairs_of_groups([[folder.paths[x] for x in g] for g in groups])


GRIDS: dict[str, tuple[Method, list[Any]]] = {
    "both, star (swept)": (
        both_star,
        [
            Thresholds(round(float(s), 2), f, d, mf, m)
            for s in np.arange(0.84, 0.97, 0.02)
            for f in (0.5, 0.6)
            for d in (8, 10, 12)
            for mf, m in [(2.0, 2.0)]
            + [(mf, m) for mf in (0.65, 0.7, 0.75) for m in (0.2, 0.25, 0.3)]
        ],
    ),
    "embeddings, star": (embed_star, [round(float(s), 2) for s in np.arange(0.5, 0.99, 0.01)]),
    "embeddings, components": (
        embed_components,
        [round(float(s), 2) for s in np.arange(0.5, 0.99, 0.01)],
    ),
    "pHash, components": (phash_components, list(range(0, 25))),
}


# loading


def load_folder(lib: Library, name: str, items: list[PlantedItem]) -> Folder:
    wanted = {str(i.path) for i in items}
    records = [r for batch in lib.store.iter_records(lib.space) for r in batch]
    records = [r for r in records if r.payload.path in wanted]
    records.sort(key=lambda r: r.payload.path)
    paths = [r.payload.path for r in records]
    vectors = np.stack([r.vector for r in records]).astype(np.float32)
    digests = [r.payload.content_hash for r in records]
    cached = lib.evidence.get(digests)
    known = np.array([d in cached for d in digests], dtype=bool)
    hashes = np.array([cached.get(d, (0, 0))[0] for d in digests], dtype=np.uint64)
    mirrors = np.array([cached.get(d, (0, 0))[1] for d in digests], dtype=np.uint64)
    pairs = candidate_pairs(
        vectors, hashes, mirrors, known, digests, k=32, min_score=0.3, max_distance=24
    )
    kept = [i for i in items if str(i.path) in set(paths)]
    return Folder(name, kept, paths, pairs)


def shipped(
    lib: Library, folder: Folder, root: Path, tier: str = "copy"
) -> tuple[set[Pair], float]:
    started = time.perf_counter()
    report = lib.duplicates(tier, folders=[root / folder.name])
    seconds = time.perf_counter() - started
    return pairs_of_groups([[m.path for m in g.members] for g in report.groups]), seconds


# running


def run(args: argparse.Namespace) -> dict[str, Any]:
    planted = args.work / "planted"
    roots = fetch_packages(args.data / "cache")
    category = {stamp_id: folders for _, stamp_id, folders in _stamp_files(roots)}
    items = build(
        args.data / "neardup", planted, distractors_per_split=args.distractors, category=category
    )
    lib = open_library(args.work / "library")
    started = time.perf_counter()
    index = lib.index([planted])
    seconds = time.perf_counter() - started
    print(f"indexed {lib.count()} images ({index.embedded} embedded) in {seconds:.0f} s")
    folders = {name: load_folder(lib, name, its) for name, its in sorted(items.items())}
    results: dict[str, Any] = {"folders": {}, "methods": {}}
    for name, folder in folders.items():
        n_orig = sum(1 for i in folder.items if i.group and i.edit is None)
        results["folders"][name] = {
            "images": len(folder.paths),
            "originals": n_orig,
            "true_pairs": len(folder.truth()),
        }
    for method, (function, grid) in GRIDS.items():
        tune = folders[TUNE]
        truth = tune.truth()
        best = max(grid, key=lambda p: (scores(function(tune, p), truth)["f1"], str(p)))
        results["methods"][method] = _evaluate(folders, lambda f, b=best, g=function: g(f, b), best)
    for tier in (Tier.COPY, Tier.SIMILAR):
        results["methods"][f"picmatch dupes ({tier} tier)"] = _evaluate(
            folders, lambda f, t=tier: shipped(lib, f, planted, t)[0], TIER_THRESHOLDS[tier]
        )
    for peer in PEERS:
        runs = peer(folders, planted)
        if runs is None:
            continue
        for run_ in runs:
            results["methods"][run_.name] = _peer_result(folders, run_)
    lib.close()
    return results


def _evaluate(
    folders: dict[str, Folder], predict: Callable[[Folder], set[Pair]], params: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"params": str(params)}
    for name, folder in folders.items():
        started = time.perf_counter()
        predicted = predict(folder)
        out[name] = scores(predicted, folder.truth()) | {
            "per_edit": per_edit(predicted, folder),
            "seconds": time.perf_counter() - started,
        }
    return out


def _peer_result(folders: dict[str, Folder], run_: PeerRun) -> dict[str, Any]:
    tune = folders[TUNE]
    truth = tune.truth()
    best = max(run_.settings, key=lambda s: scores(run_.predict(tune, s), truth)["f1"])
    out: dict[str, Any] = {"params": f"{run_.knob}={best} (default {run_.default})"}
    for name, folder in folders.items():
        predicted = run_.predict(folder, best)
        default = scores(run_.predict(folder, run_.default), folder.truth())
        out[name] = scores(predicted, folder.truth()) | {
            "per_edit": per_edit(predicted, folder),
            "default_f1": default["f1"],
            "seconds": run_.seconds.get(name, 0.0),
        }
    return out


def report(results: dict[str, Any]) -> str:
    lines = ["| folder | images | originals | true pairs |", "|---|---|---|---|"]
    for name, f in results["folders"].items():
        lines.append(f"| {name} | {f['images']} | {f['originals']} | {f['true_pairs']} |")
    for folder in ("six-test", "protocol-test", "six-tune"):
        lines += ["", f"### {folder}", ""]
        methods = results["methods"]
        edits = sorted(next(iter(methods.values()))[folder]["per_edit"])
        head = ["method", "params (chosen on six-tune)", "precision", "recall", "F1"]
        head += ["precision (labelled)", "F1 (labelled)", "clip-art pairs", *edits]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method, r in methods.items():
            m = r[folder]
            cells = [method, r["params"]]
            cells += [f"{m[k]:.3f}" for k in ("precision", "recall", "f1")]
            cells += [f"{m['precision_labelled']:.3f}", f"{m['f1_labelled']:.3f}"]
            cells.append(str(m["distractor_pairs"]))
            cells += [f"{m['per_edit'].get(e, float('nan')):.2f}" for e in edits]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/eval-data"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/picmatch-dupes"))
    parser.add_argument("--distractors", type=int, default=150, help="clip-art per folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    results = run(args)
    print(report(results))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dupes_quality.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
