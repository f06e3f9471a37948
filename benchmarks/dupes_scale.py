"""Grouping 100k and 1M stored vectors with planted duplicate groups: time, memory, quality.

    python benchmarks/dupes_scale.py --size 100000 [--real /tmp/picmatch-dupes/library]
    python benchmarks/dupes_scale.py --size 1000000

Vectors with the statistics of real embeddings: ``--real`` is a picmatch library (the one
``benchmarks/dupes_quality.py`` builds: wallpapers, clip-art and their edited copies, default
model). The base is drawn from the real vectors' empirical distribution (mean plus a random
combination of the centred real vectors, negatives clipped as the model's are, L2-normalised).
1 % of the base are originals of planted groups: each gets 2-6 copies, made by adding real
edit offsets (a real copy's vector minus its real original's, over all 23 edits) and
renormalising; float16 past 200k vectors, as the library holds them there. The grouping is the
library's own (``candidate_pairs``, the copy tier's
thresholds, star groups; no hashes, which vectors alone do not have): exact neighbours up to
200k vectors, an IVF index past that. Reports planted-pair precision and recall, seconds and
the process's peak memory; appends to ``dupes_scale.json``. One size per process, so the peak
memory is that size's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from picmatch import open_library
from picmatch.dupe_pairs import EXACT_LIMIT, candidate_pairs
from picmatch.duplicates import TIER_THRESHOLDS, Tier, accepted, star_groups


def real_vectors(library: Path) -> tuple[np.ndarray, np.ndarray]:
    """All vectors of the library, and the real edit offsets (copy minus its original)."""
    with open_library(library, create=False) as lib:
        records = [r for batch in lib.store.iter_records(lib.space) for r in batch]
    by_path = {r.payload.path: r.vector for r in records}
    offsets = []
    for path, vector in by_path.items():
        parts = Path(path).parts
        if "copies" in parts:
            folder = Path(*parts[: parts.index("copies")])
            for original in (folder / "originals").glob(Path(path).stem + ".*"):
                if str(original) in by_path:
                    offsets.append(vector - by_path[str(original)])
    return np.stack(list(by_path.values())), np.stack(offsets)


def planted_vectors(
    real: np.ndarray, offsets: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[list[int]]]:
    """n base vectors drawn like the real ones, then 2-6 copies of 1 % of them, in one float16
    array (what the library groups with past 200k images)."""
    originals = rng.choice(n, n // 100, replace=False)
    sizes = rng.integers(2, 7, len(originals))
    out = np.empty((n + int(sizes.sum()), real.shape[1]), dtype=np.float16)
    mean = real.mean(axis=0)
    centred = real - mean
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        z = rng.standard_normal((m, len(real)), dtype=np.float32) / np.sqrt(len(real) - 1)
        block = np.maximum(mean + z @ centred, 0.0)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    groups = []
    next_id = n
    for o, size in zip(originals, sizes, strict=True):
        picked = offsets[rng.choice(len(offsets), size, replace=False)]
        made = np.maximum(out[o].astype(np.float32) + picked, 0.0)
        out[next_id : next_id + size] = made / np.linalg.norm(made, axis=1, keepdims=True)
        groups.append([int(o), *range(next_id, next_id + size)])
        next_id += size
    return out, groups


def run(size: int, real_library: Path) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    real, offsets = real_vectors(real_library)
    started = time.perf_counter()
    vectors, groups = planted_vectors(real, offsets, size, rng)
    if len(vectors) <= EXACT_LIMIT:
        vectors = vectors.astype(np.float32)
    made = time.perf_counter() - started
    n = len(vectors)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = TIER_THRESHOLDS[Tier.COPY]
    started = time.perf_counter()
    none = np.zeros(n, dtype=np.uint64)
    pairs = candidate_pairs(
        vectors,
        none,
        none,
        np.zeros(n, dtype=bool),
        [""] * n,
        k=16,
        min_score=min(t.strong, t.floor, t.margin_floor),
        max_distance=-1,
    )
    found = star_groups(n, pairs.select(accepted(pairs, t)))
    seconds = time.perf_counter() - started
    truth = {p for g in groups for p in itertools.combinations(sorted(g), 2)}
    predicted = {p for g in found for p in itertools.combinations(sorted(g), 2)}
    hit = len(truth & predicted)
    return {
        "vectors": n,
        "planted_groups": len(groups),
        "planted_pairs": len(truth),
        "found_groups": len(found),
        "precision": hit / len(predicted) if predicted else 1.0,
        "recall": hit / len(truth),
        "seconds": seconds,
        "make_seconds": made,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_rss_before_grouping_gib": before,
        "thresholds": str(t),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--real", type=Path, default=Path("/tmp/picmatch-dupes/library"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result = run(args.size, args.real)
    print("| vectors | planted pairs | precision | recall | grouping s | peak GiB |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {result['vectors']:,} | {result['planted_pairs']:,} | {result['precision']:.3f} | "
        f"{result['recall']:.3f} | {result['seconds']:.0f} | {result['peak_rss_gib']:.1f} |"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "dupes_scale.json"
    runs = json.loads(target.read_text()) if target.exists() else []
    target.write_text(json.dumps([*runs, result], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
