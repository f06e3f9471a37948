"""The embedded store and a Milvus store side by side on the same real-like vectors.

For each backend, through the `VectorStore` contract (what picmatch itself calls): ingest time
(upserts in batches, then `flush`; for Milvus also the server's index build), first search,
p50/p99 of single-query searches, recall@10 against exact search, for real held-out queries and
synthetic ones. For Milvus it also says where the time of a search goes: turning the query into
a request (client serialisation), the round trip on a one-vector collection (network + server
overhead + Strong consistency), and the rest (the index).

Vectors come from ``reallike.py`` (real embeddings of the evaluation images plus a fitted Gaussian
fill; never isotropic random vectors). Without ``--store``, a Milvus standalone server is started
from the PyPI package `milvus` inside a loopback-only network namespace (root; the script re-runs
itself under scripts/isolated.sh) and stopped at the end.

    python benchmarks/store_backends.py --size 100000 [--store milvus://HOST:PORT/DB]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import reallike

K = 10
BATCH = 5_000
ROOT = Path(__file__).resolve().parent.parent


def loopback_only() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def records(base: np.ndarray, start: int, stop: int) -> list[Any]:
    from picmatch.store.base import Payload, Record

    return [
        Record(i, base[i], Payload(f"/photos/{i % 97}/{i}.jpg", f"h{i}", 1000, i, 640, 480))
        for i in range(start, stop)
    ]


def bench(store: Any, base: np.ndarray, queries: dict[str, np.ndarray], truth: Any) -> dict:
    from picmatch.store.base import Metric, SpaceInfo

    space = SpaceInfo("bench", base.shape[1], Metric.COSINE, "efficientnet-lite0")
    store.ensure_space(space)
    started = time.perf_counter()
    for start in range(0, len(base), BATCH):
        store.upsert(space.name, records(base, start, min(len(base), start + BATCH)))
    upserted = time.perf_counter() - started
    store.flush()
    if hasattr(store, "wait_for_index"):  # Milvus builds its index in the background
        store.wait_for_index(space.name)
    ready = time.perf_counter() - started
    out: dict[str, Any] = {"upsert_s": round(upserted, 1), "ingest_s": round(ready, 1)}
    first = time.perf_counter()
    store.search(space.name, queries["real"][:1], K)
    out["first_search_s"] = round(time.perf_counter() - first, 3)
    for kind, qs in queries.items():
        times, found = [], []
        for q in qs:
            t = time.perf_counter()
            hits = store.search(space.name, q[None], K)[0]
            times.append(time.perf_counter() - t)
            found.append([h.id for h in hits])
        expected = truth[kind]
        recall = np.mean([len(set(f) & set(e)) / K for f, e in zip(found, expected, strict=True)])
        out[kind] = {
            "p50_ms": round(1000 * float(np.median(times)), 2),
            "p99_ms": round(1000 * float(np.percentile(times, 99)), 2),
            "recall@10": round(float(recall), 4),
        }
    return out


def milvus_breakdown(url: str, token: str, q: np.ndarray) -> dict[str, float]:
    """Where a Milvus search's time goes: request building, round trip, index."""
    from picmatch.store.base import Metric, Payload, Record, SpaceInfo
    from picmatch.store.registry import open_store

    store = open_store(url, token=token)
    tiny = SpaceInfo("one", q.shape[1], Metric.COSINE, "efficientnet-lite0")
    store.ensure_space(tiny)
    store.upsert("one", [Record(1, q[0], Payload("/p/1.jpg", "h", 1, 1, 1, 1))])
    store.search("one", q[:1], K)
    serial, trip = [], []
    for row in q:
        t = time.perf_counter()
        row[None].tolist()
        serial.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.search("one", row[None], K)
        trip.append(time.perf_counter() - t)
    bounded = open_store(url + "?consistency=bounded", token=token)
    loose = []
    for row in q:
        t = time.perf_counter()
        bounded.search("one", row[None], K)
        loose.append(time.perf_counter() - t)
    bounded.close()
    store.drop_space("one")
    store.close()
    return {
        "serialise_ms": round(1000 * float(np.median(serial)), 3),
        "round_trip_ms": round(1000 * float(np.median(trip)), 2),
        "round_trip_bounded_ms": round(1000 * float(np.median(loose)), 2),
    }


class LocalMilvus:
    def __init__(self, folder: Path) -> None:
        from milvus import MilvusServer

        self.server = MilvusServer()
        self.server.set_base_dir(str(folder))
        self.server.start()
        self.url = f"milvus://127.0.0.1:{self.server.listen_port}/bench"

    def stop(self) -> None:
        proc = self.server.server_proc
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            self.server.server_proc = None
        self.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="of each kind")
    parser.add_argument("--store", help="an existing Milvus: milvus://HOST:PORT/DB")
    parser.add_argument("--token", default=os.environ.get("PICMATCH_STORE_TOKEN", ""))
    parser.add_argument("--eval-root", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--cache", type=Path, default=reallike.DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if not args.store and not loopback_only() and os.environ.get("PICMATCH_ISOLATED") != "1":
        env = {**os.environ, "PICMATCH_ISOLATED": "1"}
        script = str(ROOT / "scripts" / "isolated.sh")
        sys.exit(subprocess.call([script, sys.executable, *sys.argv], env=env))
    if not args.store and not loopback_only():
        sys.exit("a local Milvus binds every interface: run as root, or pass --store")

    rl = reallike.load(args.eval_root, args.cache)
    base = np.ascontiguousarray(rl.base(args.size))
    queries = {
        "real": rl.real_queries[: args.queries],
        "synthetic": rl.synthetic_queries[: args.queries],
    }
    truth = {kind: reallike.exact_topk(base, qs, K).tolist() for kind, qs in queries.items()}
    from picmatch.store.registry import open_store

    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="store-backends-") as tmp:
        rows["sqlite"] = bench(open_store(f"sqlite://{tmp}/store"), base, queries, truth)
        print("sqlite", rows["sqlite"], flush=True)
        local = None if args.store else LocalMilvus(Path(tmp) / "milvus")
        url = args.store or local.url  # type: ignore[union-attr]
        token = args.token
        try:
            rows["milvus"] = bench(open_store(url, token=token or None), base, queries, truth)
            rows["milvus"]["where_time_goes"] = milvus_breakdown(url, token, queries["real"])
            print("milvus", rows["milvus"], flush=True)
        finally:
            if local is not None:
                local.stop()

    print(f"\n{args.size:,} real-like vectors (dim {base.shape[1]}), k={K}, one query at a time")
    print(
        f"{'store':8} {'ingest s':>9} {'first s':>8} {'kind':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'recall@10':>9}"
    )
    for name, row in rows.items():
        for kind in queries:
            r = row[kind]
            print(
                f"{name:8} {row['ingest_s']:>9} {row['first_search_s']:>8} {kind:>10} "
                f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['recall@10']:>9}"
            )
    if "milvus" in rows:
        w = rows["milvus"]["where_time_goes"]
        p50 = rows["milvus"]["real"]["p50_ms"]
        print(
            f"milvus p50 {p50} ms = request building {w['serialise_ms']} ms + round trip on a "
            f"one-vector collection {w['round_trip_ms']} ms + index "
            f"{max(0.0, p50 - w['round_trip_ms']):.2f} ms; the same round trip with "
            f"?consistency=bounded: {w['round_trip_bounded_ms']} ms (Strong waits for a time tick)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"store_backends_{args.size}.json"
    target.write_text(json.dumps({"size": args.size, "k": K, "rows": rows}, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
