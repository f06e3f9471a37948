"""Search latency and recall: `Library.search_vector` vs raw FAISS, plus query-by-image end to end.

    python benchmarks/search_latency.py [--sizes 100000 1000000] [--queries 300]

For each size, random unit vectors (dim 1280, the default model's) go straight into a library's
store, then top-10 searches run one query at a time through:
- picmatch: `Library.search_vector` (store lookup, index catch-up check, HNSW, payload fetch);
- raw FAISS exact: `IndexFlatIP`, the ground truth for recall@10;
- raw FAISS HNSW: `IndexHNSWFlat` with the store's M and efConstruction, at several efSearch.
On the smallest size it also times `Library.search(image_path)` end to end (decode + model +
search) for a photo that is not in the library. Prints a table, writes JSON.
Random vectors in 1280 dimensions are the hardest case for HNSW (no cluster structure);
real image embeddings reach a given recall with a smaller search effort.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from picmatch.indexer import record_id
from picmatch.library import Library, open_library
from picmatch.store.base import Payload, Record
from picmatch.store.vector_index import EF_CONSTRUCTION, HNSW_M

DIM = 1280
CHUNK = 20_000


def unit(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, CHUNK):
        block = rng.standard_normal((min(CHUNK, n - start), DIM), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def fill(lib: Library, vectors: np.ndarray) -> float:
    lib._ensure_space()
    started = time.perf_counter()
    for start in range(0, len(vectors), CHUNK):
        records = []
        for i in range(start, min(start + CHUNK, len(vectors))):
            path = f"/bench/{i // 1000:04d}/{i:07d}.jpg"
            payload = Payload(path, f"{i:032x}", 1000, 1, 640, 480)
            records.append(Record(record_id(path), vectors[i], payload))
        lib.store.upsert(lib.space, records)
    return time.perf_counter() - started


def timed(fn: object, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    latencies, results = [], []
    for q in queries:
        started = time.perf_counter()
        found = fn(q)  # type: ignore[operator]
        latencies.append(time.perf_counter() - started)
        results.append(found)
    return latencies, results


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t.tolist())) / len(t) for f, t in pairs]))


def raw_hnsw_index(vectors: np.ndarray) -> object:
    import faiss

    index = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(vectors)
    return index


def bench_size(
    n: int, n_queries: int, image: Path | None, ef_values: list[int]
) -> dict[str, float]:
    import faiss

    vectors = unit(n, seed=n)
    queries = unit(n_queries, seed=1)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    _, truth = flat.search(queries, 10)
    row: dict[str, float] = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        lib = open_library(Path(tmp) / "lib")
        row["ingest_s"] = fill(lib, vectors)
        started = time.perf_counter()
        lib.search_vector(queries[0], 10)  # builds the index from SQLite
        row["index_build_s"] = time.perf_counter() - started
        row_of = {record_id(f"/bench/{i // 1000:04d}/{i:07d}.jpg"): i for i in range(n)}

        def ours(q: np.ndarray) -> list[int]:
            return [row_of[h.id] for h in lib.search_vector(q, 10)]

        def raw_flat(q: np.ndarray) -> list[int]:
            return list(flat.search(q[None, :], 10)[1][0].tolist())

        methods = [("picmatch", ours), ("faiss_exact", raw_flat)]
        started = time.perf_counter()
        hnsw = raw_hnsw_index(vectors)
        row["raw_hnsw_build_s"] = time.perf_counter() - started
        for ef in ef_values:
            methods.append((f"faiss_hnsw_ef{ef}", _hnsw_search(hnsw, ef)))
        for name, fn in methods:
            timed(fn, queries[:20])  # warm-up
            lat, found = timed(fn, queries)
            row[f"{name}_p50_ms"] = float(np.median(lat) * 1000)
            row[f"{name}_p99_ms"] = float(np.percentile(lat, 99) * 1000)
            row[f"{name}_recall10"] = recall(found, truth)
        if image is not None:
            lib.search(image, 10)  # loads the model
            lat, _ = timed(lambda _q: lib.search(image, 10), queries[:50])
            row["image_query_p50_ms"] = float(np.median(lat) * 1000)
        lib.close()
    return row


def _hnsw_search(index: object, ef: int) -> object:
    import faiss

    params = faiss.SearchParametersHNSW()
    params.efSearch = ef

    def search(q: np.ndarray) -> list[int]:
        return list(index.search(q[None, :], 10, params=params)[1][0].tolist())  # type: ignore[attr-defined]

    return search


def query_photo(folder: Path) -> Path:
    import skimage.data
    from PIL import Image

    path = folder / "query.jpg"
    Image.fromarray(skimage.data.coffee()).resize((1600, 1067)).save(path, quality=90)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="search latency benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--ef", type=int, nargs="+", default=[96, 512], help="raw HNSW efSearch")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = query_photo(Path(tmp))
        for i, n in enumerate(sorted(args.sizes)):
            print(f"size {n}: filling store and building the index ...", flush=True)
            rows.append(bench_size(n, args.queries, photo if i == 0 else None, args.ef))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| vectors | method | p50 ms | p99 ms | recall@10 |")
    print("|---:|---|---:|---:|---:|")
    for row in rows:
        names = ["picmatch", "faiss_exact"] + [f"faiss_hnsw_ef{ef}" for ef in args.ef]
        for name in names:
            print(f"| {row['n']:,} | {name} | {row[f'{name}_p50_ms']:.2f} | "
                  f"{row[f'{name}_p99_ms']:.2f} | {row[f'{name}_recall10']:.3f} |")  # fmt: skip
        for name in names[1:]:
            ratio = row["picmatch_p50_ms"] / row[f"{name}_p50_ms"]
            print(f"| {row['n']:,} | picmatch p50 ÷ {name} p50 | {ratio:.2f}× | | |")
        if "image_query_p50_ms" in row:
            print(f"| {row['n']:,} | query by image, end to end | "
                  f"{row['image_query_p50_ms']:.1f} | | |")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_latency.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
