"""Retrieval quality through the public `Library` API, with the protocol's baselines in one run.

    python benchmarks/quality.py [--data benchmarks/data] [--out benchmarks/results]
                                 [--variant NAME | --variant key=value,... ]...

Follows ``shared/eval/PROTOCOL.md`` on the sets ``benchmarks/datasets.py`` builds:

* near-duplicates: the index set goes into a new temporary library; every positive and
  negative query is searched with k=10. Recall@1 and @10 per edit and overall; µAP over the
  pooled top-10 (score, correct) pairs of all queries; recall at 1 % false positives (the
  threshold is the top-1 score that only 1 % of negative queries exceed);
* categories: all images go into a new library; each is searched for by its path (the stored
  vector) over the whole library, itself dropped. P@10, and mAP over the full ranking.

Methods: ``picmatch`` (a library created with today's default params), ``raw`` (a library
created with the first pipeline's params: centre crop, plain cosine), ``phash`` (64-bit pHash,
Hamming distance, ties broken by index order; ``benchmarks/phash_baseline.py``), and every
``--variant``: a name from `VARIANTS`, or ad hoc params laid over the defaults
(``--variant resize=pad,flip=mean``). Prints markdown tables; writes ``quality.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from datasets import DEFAULT_OUT, load_category, load_neardup, summarize
from phash_baseline import PhashIndex
from picmatch import open_library
from picmatch.eval.metrics import (
    mean_average_precision,
    micro_ap,
    precision_at_k,
    recall_at_fpr,
    recall_at_k,
)
from picmatch.eval.sets import CategorySet, NearDupSet
from picmatch.models.registry import DEFAULT_SPEC, default_params

K = 10
FPR = 0.01
RAW_PARAMS = {"resize": "center_crop"}  # the first libraries' pipeline: the raw model
VARIANTS: dict[str, dict[str, str]] = {  # each is laid over the default params
    "center_crop": {"resize": "center_crop"},
    "pad": {"resize": "pad"},
    "no_power": {"power": "1"},
    "flip": {"flip": "mean"},
}


@dataclass(frozen=True)
class Ranking:
    """One query's results, best first."""

    ids: tuple[str, ...]
    scores: tuple[float, ...]

    def without(self, item_id: str) -> Ranking:
        keep = [i for i, x in enumerate(self.ids) if x != item_id]
        return Ranking(tuple(self.ids[i] for i in keep), tuple(self.scores[i] for i in keep))


@dataclass
class Runs:
    """Everything one method returned, and how long indexing took."""

    name: str
    params: dict[str, str] | None
    neardup: list[Ranking] = field(default_factory=list)
    category: list[Ranking] = field(default_factory=list)
    index_images_per_s: float = 0.0


# --- running the methods -------------------------------------------------------------------


def _progress(label: str, items: Sequence[Any]) -> Iterable[Any]:
    for n, item in enumerate(items, 1):
        if n % 100 == 0 or n == len(items):
            print(f"  {label}: {n}/{len(items)}", file=sys.stderr, flush=True)
        yield item


def run_library(
    name: str, params: dict[str, str], nd: NearDupSet, cat: CategorySet, workdir: Path
) -> Runs:
    """Index both sets into new libraries created with `params` and query them."""
    runs = Runs(name, params)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"quality-{name}-") as tmp:
        with open_library(Path(tmp) / "neardup", params=params) as lib:
            started = time.perf_counter()
            lib.index([item.path for item in nd.index])
            runs.index_images_per_s = len(nd.index) / (time.perf_counter() - started)
            ids = {_key(item.path): item.id for item in nd.index}
            for query in _progress(f"{name} near-dup", nd.queries):
                runs.neardup.append(_ranking(lib.search(query.path, K), ids))
        with open_library(Path(tmp) / "category", params=params) as lib:
            lib.index([item.path for item in cat.items])
            ids = {_key(item.path): item.id for item in cat.items}
            for item in _progress(f"{name} category", cat.items):
                hits = lib.search(item.path, len(cat.items))  # the stored vector: no re-embed
                runs.category.append(_ranking(hits, ids).without(item.id))
    return runs


def _key(path: Path) -> str:
    return str(Path(path).absolute())


def _ranking(hits: Sequence[Any], ids: dict[str, str]) -> Ranking:
    return Ranking(tuple(ids[h.path] for h in hits), tuple(h.score for h in hits))


def run_phash(nd: NearDupSet, cat: CategorySet) -> Runs:
    """The pHash baseline over the same files (score = -Hamming distance)."""
    runs = Runs("phash", None)
    index = PhashIndex()
    started = time.perf_counter()
    index.add_many((item.id, _rgb(item.path)) for item in nd.index)
    runs.index_images_per_s = len(nd.index) / (time.perf_counter() - started)
    for query in _progress("phash near-dup", nd.queries):
        hits = index.search(_rgb(query.path), K)
        runs.neardup.append(Ranking(hits.ids, hits.scores))
    index = PhashIndex()
    index.add_many((item.id, _rgb(item.path)) for item in cat.items)
    for item in _progress("phash category", cat.items):
        hits = index.search(_rgb(item.path))
        runs.category.append(Ranking(hits.ids, hits.scores).without(item.id))
    return runs


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


# --- metrics ------------------------------------------------------------------------------


def neardup_metrics(nd: NearDupSet, runs: Sequence[Ranking]) -> dict[str, Any]:
    """Recall@1/@10 per edit and overall, µAP, recall at 1 % false positives."""
    truths = [q.original for q in nd.queries]
    ranked = [r.ids for r in runs]

    def recall(k: int, edit: str | None) -> float:
        chosen = [i for i, q in enumerate(nd.queries) if edit in (None, q.edit)]
        return recall_at_k([ranked[i] for i in chosen], [truths[i] for i in chosen], k)

    pairs = [
        (score, hit == truth)
        for run, truth in zip(runs, truths, strict=True)
        for hit, score in zip(run.ids[:K], run.scores[:K], strict=True)
    ]
    positives = [
        (run.scores[0], run.ids[0] == truth)
        for run, truth in zip(runs, truths, strict=True)
        if truth is not None
    ]
    negatives = [run.scores[0] for run, truth in zip(runs, truths, strict=True) if truth is None]
    point = recall_at_fpr(positives, negatives, FPR)
    return {
        "recall@1": {e: recall(1, e) for e in nd.edits} | {"all": recall(1, None)},
        "recall@10": {e: recall(K, e) for e in nd.edits} | {"all": recall(K, None)},
        "micro_ap": micro_ap(pairs, len(positives)),
        "recall@1%fpr": point.recall,
        "threshold@1%fpr": point.threshold,
    }


def category_metrics(cat: CategorySet, runs: Sequence[Ranking]) -> dict[str, float]:
    """P@10 and mAP (relevant = the rest of the query's class) over the full ranking."""
    label = {item.id: item.label for item in cat.items}
    size = Counter(label.values())
    wanted = [item.label for item in cat.items]
    ranked = [[label[i] for i in run.ids] for run in runs]
    return {
        "p@10": precision_at_k(ranked, wanted, K),
        "map": mean_average_precision(ranked, wanted, [size[w] - 1 for w in wanted]),
    }


# --- reporting ------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report(results: dict[str, dict[str, Any]], edits: Sequence[str]) -> str:
    parts = []
    for metric in ("recall@1", "recall@10"):
        rows = [
            [name, *(r["neardup"][metric][e] for e in (*edits, "all"))]
            for name, r in results.items()
        ]
        table = markdown_table(["method", *edits, "all"], rows)
        parts.append(f"### Near-duplicate {metric}\n\n{table}")
    header = ["method", "µAP", "recall@1%FPR", "threshold", "category P@10", "category mAP"]
    header.append("index images/s")  # noisy on a shared machine; compare within one run
    rows = [
        [
            name,
            r["neardup"]["micro_ap"],
            r["neardup"]["recall@1%fpr"],
            r["neardup"]["threshold@1%fpr"],
            r["category"]["p@10"],
            r["category"]["map"],
            f"{r['index_images_per_s']:.0f}",
        ]
        for name, r in results.items()
    ]
    parts.append("### Calibration and categories\n\n" + markdown_table(header, rows))
    return "\n\n".join(parts)


def environment(data: Path) -> dict[str, Any]:
    """The sets' counts and checksums, the machine and the commit."""
    import onnxruntime

    return {
        "sets": summarize(data),
        "machine": {
            "cpu": _cpu_model(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "system": platform.platform(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
        },
        "commit": _commit(),
        "model": DEFAULT_SPEC,
        "default_params": default_params(DEFAULT_SPEC),
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks")
    return head + ("+dirty" if dirty else "")


def _set_line(sets: dict[str, Any]) -> str:
    counts = ", ".join(
        f"{sets[key]} {key.replace('_', ' ')}"
        for key in ("originals_indexed", "distractors", "queries_positive", "queries_negative")
    )
    return (
        f"near-dup set: {counts}; category set: {sets['category_images']} images in "
        f"{sets['category_classes']} classes; {sets['files']} files, file list sha256 "
        f"{sets['file_list_sha256'][:16]}, content sha256 {sets['content_sha256'][:16]}"
    )


def _variant(spec: str) -> tuple[str, dict[str, str]]:
    """A named variant, or ``key=value,...`` laid over the default params."""
    if "=" not in spec:
        if spec not in VARIANTS:
            raise SystemExit(f"unknown variant {spec!r}: use key=value,... or one of {[*VARIANTS]}")
        return spec, default_params(DEFAULT_SPEC) | VARIANTS[spec]
    pairs = dict(part.split("=", 1) for part in spec.split(",") if part)
    return spec, default_params(DEFAULT_SPEC) | pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT, help="datasets.py --out")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME|k=v,...")
    args = parser.parse_args(argv)
    nd, cat = load_neardup(args.data), load_category(args.data)
    methods: list[tuple[str, Callable[[], Runs]]] = [("phash", lambda: run_phash(nd, cat))]
    workdir = Path(tempfile.gettempdir())
    configs = [("picmatch", default_params(DEFAULT_SPEC)), ("raw", RAW_PARAMS)]
    for name, params in [*configs, *map(_variant, args.variant)]:
        methods.append((name, lambda n=name, p=params: run_library(n, p, nd, cat, workdir)))
    results: dict[str, dict[str, Any]] = {}
    for name, run in methods:
        runs = run()
        results[name] = {
            "params": runs.params,
            "index_images_per_s": runs.index_images_per_s,
            "neardup": neardup_metrics(nd, runs.neardup),
            "category": category_metrics(cat, runs.category),
        }
    env = environment(args.data)
    print(report(results, nd.edits))
    print("\n" + _set_line(env["sets"]))
    print(f"machine: {env['machine']['cpu']}, {env['machine']['cpus_usable']} CPUs")
    print(f"commit: {env['commit']}; pHash ties are broken by index order")
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "methods": results}
    (args.out / "quality.json").write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
