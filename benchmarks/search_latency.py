"""Search at 100k-1M vectors on real-like embeddings: picmatch's store vs raw FAISS, same run.

    python benchmarks/search_latency.py [--sizes 100000 300000 1000000] [--raw exact ivf ...]
        [--eval-root benchmarks/data] [--cache /tmp/picmatch-reallike]

Vectors (benchmarks/reallike.py): real EfficientNet-Lite0 embeddings of the evaluation images
and augmented views, filled up to N with draws from a Gaussian fitted to them; queries are
held-out Gaussian draws ("syn") and held-out real images ("real"). Ground truth: exact top-10.

For each size, each in its own process (so its resident memory is its own):
- picmatch: the records are upserted into a `SqliteStore`; `flush()` (what the end of
  `picmatch index` runs) builds the index; a fresh process opens the store and times its first
  search, then every query (p50/p99, recall@10) and its memory (RSS, anonymous / file-backed);
  then another store object in that process adds 1,000 vectors and flushes (an index run) and
  the searcher's next search must find them (catch-up time).
- raw FAISS, one query at a time on one thread: exact (`IndexFlatIP`), HNSW32 (efConstruction
  80) at several efSearch, IVF-SQ8 and HNSW32-SQ8 with exact re-scoring of 40 candidates
  (from a memory-mapped float32 file), and picmatch's own index (`store/ivf_sq8.py`: IVF over
  PCA-256 SQ8 codes + SQ8 re-ranking) with the same re-scoring, at several nprobe, to show what
  the store adds. Built indexes are cached beside the vectors.
Prints a markdown table and writes JSON. Generated data stays under --cache, never here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import reallike

K = 10
RERANK = 40
HNSW_M, EF_CONSTRUCTION = 32, 80
RAW_KINDS = ("exact", "hnsw", "ivf", "hnsw-sq8", "ivf-pca")
EXACT_QUERIES = 60  # exact search at 1M takes ~0.2 s a query
INGEST_CHUNK = 20_000


def rss() -> dict[str, float]:
    """This process's resident memory, MiB: total, anonymous, file-backed, peak."""
    fields = {"VmRSS": "rss_mib", "RssAnon": "rss_anon_mib", "RssFile": "rss_file_mib"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields or key == "VmHWM":
            out[fields.get(key, "peak_rss_mib")] = int(value.split()[0]) / 1024
    return out


def payload_of(i: int) -> Any:
    from picmatch.store.base import Payload

    return Payload(f"/bench/{i // 1000:04d}/{i:07d}.jpg", f"{i:032x}", 1000, 1, 640, 480)


def index_info(store: Any) -> dict[str, Any]:
    """What the store says about its index (stores before issue 8 said nothing)."""
    report = getattr(store, "index_info", None)
    return dict(report("bench")) if report else {"kind": "before issue 8"}


def space() -> Any:
    from picmatch.store.base import Metric, SpaceInfo

    return SpaceInfo("bench", reallike.DIM, Metric.COSINE, "efficientnet-lite0")


# picmatch's store


def ingest(folder: Path, base: np.ndarray) -> float:
    from picmatch.store.base import Record
    from picmatch.store.sqlite import SqliteStore

    store = SqliteStore(folder)
    store.ensure_space(space())
    started = time.perf_counter()
    for start in range(0, len(base), INGEST_CHUNK):
        block = np.asarray(base[start : start + INGEST_CHUNK])
        rows = [Record(start + j, v, payload_of(start + j)) for j, v in enumerate(block)]
        store.upsert("bench", rows)
    store.close()
    return time.perf_counter() - started


def worker_build(folder: Path) -> dict[str, Any]:
    """The index step: `flush()` builds the index from SQLite and saves it."""
    from picmatch.store.sqlite import SqliteStore

    store = SqliteStore(folder)
    started = time.perf_counter()
    store.flush()
    out = {"build_s": time.perf_counter() - started, **index_info(store)}
    store.close()
    return out | {f"build_{k}": v for k, v in rss().items()}


def worker_search(folder: Path, queries: np.ndarray, extra: np.ndarray) -> dict[str, Any]:
    from picmatch.store.base import Record
    from picmatch.store.sqlite import SqliteStore

    started = time.perf_counter()
    store = SqliteStore(folder)
    store.search("bench", queries[:1], K)
    out: dict[str, Any] = {"first_search_s": time.perf_counter() - started}
    for q in queries[:20]:  # warm-up
        store.search("bench", q[None], K)
    latencies, found = [], []
    for q in queries:
        started = time.perf_counter()
        hits = store.search("bench", q[None], K)[0]
        latencies.append(time.perf_counter() - started)
        found.append([h.id for h in hits])
    out.update(latencies=latencies, found=found, **rss(), index=index_info(store))
    n = store.count("bench")
    writer = SqliteStore(folder)  # `picmatch index` adding 1,000 images, as another store
    started = time.perf_counter()
    writer.upsert("bench", [Record(n + j, v, payload_of(n + j)) for j, v in enumerate(extra)])
    out["add_upsert_s"] = time.perf_counter() - started
    started = time.perf_counter()
    writer.flush()
    out["add_flush_s"] = time.perf_counter() - started
    writer.close()
    started = time.perf_counter()
    hits = store.search("bench", extra[:1], 1)[0]
    out["add_next_search_s"] = time.perf_counter() - started
    new = store.search("bench", extra[:100], 1)
    out["add_found_share"] = float(np.mean([row[0].id >= n for row in new]))
    out["add_first_hit_is_new"] = bool(hits and hits[0].id == n)
    store.close()
    return out


# raw FAISS


def worker_raw(kind: str, n: int, cache: Path, queries: np.ndarray, params: list[int]) -> dict:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building
    base = np.load(cache / f"base_{n}.npy", mmap_mode="r")
    started = time.perf_counter()
    index, cached = raw_index(kind, base, cache)
    out: dict[str, Any] = {"build_s": time.perf_counter() - started, "cached": cached, **rss()}
    faiss.omp_set_num_threads(1)  # one query at a time, one thread, as the study did
    rows = []
    for param in params if kind != "exact" else [0]:
        search = raw_search(kind, index, base, param)
        rows_used = np.arange(len(queries))
        if kind == "exact":  # as many synthetic as real queries
            rows_used = np.linspace(0, len(queries) - 1, EXACT_QUERIES).astype(int)
        qs = queries[rows_used]
        for q in qs[:10]:
            search(q)
        latencies, found = [], []
        for q in qs:
            started = time.perf_counter()
            found.append(search(q))
            latencies.append(time.perf_counter() - started)
        rows.append(
            {"param": param, "latencies": latencies, "found": found, "rows": rows_used.tolist()}
        )
    out["rows"] = rows
    return out | {f"after_{k}": v for k, v in rss().items()}


def raw_index(kind: str, base: np.ndarray, cache: Path) -> tuple[Any, bool]:
    import faiss

    n, dim = base.shape
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
        add_in_chunks(index, base)
        return index, False
    path = cache / f"raw_{kind}_{n}.faiss"
    if path.exists():
        return faiss.read_index(str(path)), True
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivf-pca":  # picmatch's own configuration, without the store around it
        from picmatch.store import ivf_sq8

        sample = np.ascontiguousarray(base[np.linspace(0, n - 1, min(n, 120_000)).astype(int)])
        index = ivf_sq8.train(dim, sample, n)
        add_in_chunks(index, base)
        faiss.write_index(index, str(path))
        return index, False
    elif kind == "hnsw-sq8":
        index = faiss.IndexHNSWSQ(
            dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT
        )
    else:
        lists = round(4 * math.sqrt(n))
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim),
            dim,
            lists,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        index.cp.niter = 10
    if kind != "hnsw":
        sample = np.ascontiguousarray(base[np.linspace(0, n - 1, min(n, 120_000)).astype(int)])
        index.train(sample)
    if kind != "ivf":
        index.hnsw.efConstruction = EF_CONSTRUCTION
    add_in_chunks(index, base)
    faiss.write_index(index, str(path))
    return index, False


def add_in_chunks(index: Any, base: np.ndarray) -> None:
    for start in range(0, len(base), 50_000):
        index.add(np.ascontiguousarray(base[start : start + 50_000]))


def raw_search(kind: str, index: Any, base: np.ndarray, param: int) -> Any:
    import faiss

    if kind == "exact":
        return lambda q: index.search(q[None], K)[1][0].tolist()
    if kind == "ivf-pca":
        from picmatch.store import ivf_sq8

        def search_pca(q: np.ndarray) -> list[int]:
            found = ivf_sq8.search(index, q[None], RERANK, param, None)[0]
            slots = np.sort(found[found >= 0])
            return list(slots[np.argsort(-(np.asarray(base[slots]) @ q))[:K]].tolist())

        return search_pca
    if kind == "ivf":
        params: Any = faiss.SearchParametersIVF()
        params.nprobe = param
    else:
        params = faiss.SearchParametersHNSW()
        params.efSearch = param
    count = K if kind == "hnsw" else RERANK

    def search(q: np.ndarray) -> list[int]:
        found = index.search(q[None], count, params=params)[1][0]
        if kind == "hnsw":
            return list(found.tolist())
        slots = np.sort(found[found >= 0])
        return list(slots[np.argsort(-(np.asarray(base[slots]) @ q))[:K]].tolist())

    return search


# driver


def run_worker(args: list[str], timeout: float = 7200) -> dict[str, Any]:
    """This script in a fresh process; returns the JSON it prints last."""
    command = [sys.executable, __file__, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summary(latencies: list[float], found: list[list[int]], truth: np.ndarray, split: int) -> dict:
    hits = [len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=False)]
    return {
        "p50_ms": float(np.median(latencies) * 1000),
        "p99_ms": float(np.percentile(latencies, 99) * 1000),
        "recall10": float(np.mean(hits)),
        "recall10_syn": float(np.mean(hits[:split])),
        "recall10_real": float(np.mean(hits[split:])) if len(hits) > split else math.nan,
    }


def bench_size(n: int, rl: reallike.RealLike, args: argparse.Namespace) -> dict[str, Any]:
    base = rl.base(n)
    queries, split = rl.queries()
    truth = rl.truth(n)
    np.save(rl.cache / "queries.npy", queries)
    extra = rl.synthetic(n + 1000 - len(rl.real_base))[-1000:]
    np.save(rl.cache / "extra.npy", np.ascontiguousarray(extra))
    row: dict[str, Any] = {"n": n, "real_in_base": len(rl.real_base), "queries": len(queries)}
    if "picmatch" in args.methods:
        with tempfile.TemporaryDirectory(prefix="picmatch-search-", dir=args.work) as tmp:
            folder = Path(tmp) / "store"
            row["ingest_s"] = ingest(folder, base)
            print(f"  ingest {row['ingest_s']:.0f} s", flush=True)
            row["build"] = run_worker(["--worker", "build", str(folder)])
            print(f"  build {row['build']['build_s']:.1f} s", flush=True)
            cache = str(rl.cache)
            result = run_worker(["--worker", "search", str(folder), cache])
            row["disk_bytes"] = sum(p.stat().st_size for p in folder.iterdir())
        stats = summary(result.pop("latencies"), result.pop("found"), truth, split)
        row["picmatch"] = result | stats
        print(f"  picmatch {json.dumps(row['picmatch'])}", flush=True)
    for kind in args.raw:
        params = {"hnsw": args.ef, "hnsw-sq8": args.ef_sq8, "ivf": args.nprobe}.get(kind, [0])
        params = args.nprobe_pca if kind == "ivf-pca" else params
        result = run_worker(
            ["--worker", "raw", kind, str(n), str(rl.cache), ",".join(map(str, params))]
        )
        for entry in result.pop("rows"):
            used = np.array(entry["rows"])
            cut = int((used < split).sum())
            stats = summary(entry["latencies"], entry["found"], truth[used], cut)
            name = kind if kind == "exact" else f"{kind}:{entry['param']}"
            row[f"raw {name}"] = result | stats
            print(f"  raw {name}: {json.dumps(row[f'raw {name}'])}", flush=True)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| vectors | method | build s | first search s | p50 ms | p99 ms "
        "| R@10 all (syn/real) | RSS MiB (anon/file) |"
    )
    print("|---:|---|---:|---:|---:|---:|---|---|")
    for row in rows:
        for name, r in row.items():
            if not isinstance(r, dict) or "p50_ms" not in r:
                continue
            label = name
            build = row["build"]["build_s"] if name == "picmatch" else r.get("build_s", math.nan)
            if name == "picmatch":
                index = r["index"]
                label = f"**picmatch ({index['kind']}, nprobe {index.get('nprobe', '-')})**"
            first = f"{r['first_search_s']:.2f}" if "first_search_s" in r else ""
            cached = " (cached)" if r.get("cached") else ""
            print(
                f"| {row['n']:,} | {label} | {build:.1f}{cached} | {first} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['recall10']:.3f} ({r['recall10_syn']:.3f}/"
                f"{r['recall10_real']:.3f}) | {r.get('rss_mib', 0):,.0f} "
                f"({r.get('rss_anon_mib', 0):,.0f}/{r.get('rss_file_mib', 0):,.0f}) |"
            )
        if "picmatch" in row:
            p = row["picmatch"]
            print(
                f"| {row['n']:,} | picmatch: ingest {row['ingest_s']:.0f} s; add 1,000: upsert "
                f"{p['add_upsert_s']:.2f} s + index step {p['add_flush_s']:.2f} s, next search "
                f"{p['add_next_search_s']:.2f} s, new found {p['add_found_share']:.2f} "
                "| | | | | | |"
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker_main(sys.argv[2:])))
        return
    parser = argparse.ArgumentParser(description="search latency and recall at scale")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["picmatch"], choices=["picmatch", "none"])
    parser.add_argument("--raw", nargs="*", default=list(RAW_KINDS), choices=RAW_KINDS)
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--ef-sq8", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[64, 128, 192, 256])
    parser.add_argument("--nprobe-pca", type=int, nargs="+", default=[192, 256, 384, 512])
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--cache", type=Path, default=reallike.DEFAULT_CACHE)
    parser.add_argument("--work", type=Path, default=None, help="where the stores go (tmp)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rl = reallike.load(args.eval_root, args.cache)
    rows = []
    for n in args.sizes:  # in the order given
        print(f"size {n:,}", flush=True)
        rows.append(bench_size(n, rl, args))
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()}
        (args.out / "search_latency.json").write_text(json.dumps([meta, *rows], indent=1))
    print_table(rows)


def worker_main(argv: list[str]) -> dict[str, Any]:
    what, rest = argv[0], argv[1:]
    if what == "build":
        return worker_build(Path(rest[0]))
    if what == "search":
        cache = Path(rest[1])
        return worker_search(
            Path(rest[0]), np.load(cache / "queries.npy"), np.load(cache / "extra.npy")
        )
    queries = np.load(Path(rest[2]) / "queries.npy")
    params = [int(p) for p in rest[3].split(",")]
    return worker_raw(rest[0], int(rest[1]), Path(rest[2]), queries, params)


if __name__ == "__main__":
    main()
