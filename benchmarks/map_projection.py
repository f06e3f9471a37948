"""Which 2-D projection for the library map: PCA only, UMAP (umap-learn) or openTSNE, over PCA-50.

    python benchmarks/map_projection.py [--sizes 10000 100000] [--out map_projection.json]

Vectors like users' (see shared/notes/scale-study.md): the default model's embeddings of the
tuxpaint stamps and wallpapers of the evaluation packages (benchmarks/datasets.py fetches them),
each image plus two edited views (crop + flip, colour jitter), then a fill up to N drawn from a
Gaussian mixture fitted to them (k-means means, pooled within-cluster covariance, negatives
clipped, L2-normalised), so the fill keeps the clusters a projection has to show.

Each method runs in its own process (peak RSS growth over the loaded vectors is its memory):
PCA to 50 dimensions, then the method to 2-D. Neighbour preservation: for 2,000 sampled points,
the share of their 10 nearest neighbours in the full 1280-d space (cosine) that are among their
10 nearest on the map; "real" counts only sampled points that are real embeddings. Placement of
1,000 new vectors into the existing map (the incremental path) is timed and scored the same way.
The baseline is PCA-only, measured in the same run. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
HERE = Path(__file__).resolve().parent
METHODS = ("pca", "umap", "opentsne", "picmatch")
K = 10
SAMPLE = 2000
NEW = 1000


# ---- real-like vectors


def _views(path: Path, rng: np.random.Generator) -> list[Any]:
    from PIL import Image, ImageEnhance, ImageOps

    with Image.open(path) as img:
        img.load()
        rgba = img.convert("RGBA")
    base = Image.new("RGB", rgba.size, (255, 255, 255))
    base.paste(rgba, mask=rgba.getchannel("A"))
    w, h = base.size
    share = rng.uniform(0.6, 0.9)
    cw, ch = int(w * share), int(h * share)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    cropped = ImageOps.mirror(base.crop((x, y, x + cw, y + ch)))
    jitter = ImageEnhance.Color(base).enhance(rng.uniform(0.5, 1.5))
    jitter = ImageEnhance.Brightness(jitter).enhance(rng.uniform(0.75, 1.25))
    return [base, cropped, jitter]


def real_vectors(cache: Path, model_cache: Path) -> tuple[Floats, npt.NDArray[np.int64]]:
    """Embeddings of every stamp and wallpaper and two views of each (cached); and the image of
    each row, so views of one image can be told apart from other images."""
    saved = cache / "map-real-vectors.npz"
    if saved.exists():
        data = np.load(saved)
        return data["vectors"], data["groups"]
    sys.path.insert(0, str(HERE))
    from datasets import fetch_packages  # type: ignore[import-not-found]
    from picmatch.images.fit import fit_to_input
    from picmatch.library import open_library

    roots = fetch_packages(cache)
    files = sorted(
        p
        for root in roots.values()
        for p in root.rglob("*")
        if p.suffix.lower() in {".png", ".jpg", ".jpeg"}
    )
    rng = np.random.default_rng(0)
    vectors, groups = [], []
    with tempfile.TemporaryDirectory(prefix="map-bench-") as tmp:
        lib = open_library(Path(tmp) / "lib", cache_dir=model_cache)
        embedder = lib.embedder
        started = time.perf_counter()
        for n, path in enumerate(files):
            try:
                views = _views(path, rng)
            except OSError:
                continue
            pixels = [fit_to_input(v, embedder.preprocess) for v in views]
            vectors.append(embedder.embed_images(pixels))
            groups += [n] * len(pixels)
            if n % 100 == 0:
                rate = len(groups) / (time.perf_counter() - started)
                print(f"  embedded {n}/{len(files)} images ({rate:.0f} vectors/s)", flush=True)
        lib.close()
    out, grp = np.concatenate(vectors).astype(np.float32), np.asarray(groups, np.int64)
    np.savez(saved, vectors=out, groups=grp)
    return out, grp


def mixture_fill(real: Floats, n: int, seed: int, clusters: int = 64) -> Floats:
    """`n` draws from a Gaussian mixture fitted to `real` (k-means, pooled covariance)."""
    from picmatch._sys import faiss

    fa = faiss()
    kmeans = fa.Kmeans(real.shape[1], clusters, niter=20, seed=seed, spherical=True)
    kmeans.train(real)
    _, assign = kmeans.index.search(real, 1)
    assign = assign[:, 0]
    centroids = np.stack([real[assign == c].mean(axis=0) for c in range(clusters)])
    residual = (real - centroids[assign]).astype(np.float64)
    cov = residual.T @ residual / len(real)
    chol = np.linalg.cholesky(cov + 1e-6 * np.eye(len(cov)))
    rng = np.random.default_rng(seed)
    weights = np.bincount(assign, minlength=clusters) / len(real)
    picks = rng.choice(clusters, size=n, p=weights)
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 10_000):
        rows = picks[start : start + 10_000]
        noise = rng.standard_normal((len(rows), len(cov))) @ chol.T
        block = np.clip(centroids[rows] + noise, 0, None)
        out[start : start + len(rows)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


# ---- one method in its own process


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> float:
    """Reset the peak-RSS counter (Linux) and return the current RSS in MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def run_one(method: str, vectors_file: Path, n_base: int) -> dict[str, Any]:
    """Fit `method` on the first `n_base` rows, place the next NEW rows, score both."""
    data = np.load(vectors_file)
    vectors, is_real = data["vectors"], data["is_real"]
    base, new = vectors[:n_base], vectors[n_base : n_base + NEW]
    before = _reset_peak()
    started = time.perf_counter()
    place = None
    if method == "picmatch":
        from picmatch.projection import PLACE_NEIGHBOURS, fit_positions, place_near

        coords = fit_positions(base)

        def place(v: Floats) -> Floats:
            from picmatch._sys import faiss

            index = faiss().IndexFlatIP(base.shape[1])
            index.add(base)
            scores, near = index.search(v, PLACE_NEIGHBOURS)
            return place_near(coords[near], scores)
    else:
        reduced, pca = pca_reduce(base)
        if method == "pca":
            coords = reduced[:, :2].copy()
            place = lambda v: pca(v)[:, :2]  # noqa: E731
        elif method == "umap":
            import umap  # type: ignore[import-not-found]

            model = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=None)
            coords = model.fit_transform(reduced)
            place = lambda v: model.transform(pca(v))  # noqa: E731
        elif method == "opentsne":
            from openTSNE import TSNE  # type: ignore[import-not-found]

            emb = TSNE(n_jobs=2, metric="cosine", random_state=0, verbose=False).fit(reduced)
            coords = np.asarray(emb)
            place = lambda v: np.asarray(emb.transform(pca(v)))  # noqa: E731
        else:
            raise SystemExit(f"unknown method {method}")
    fit_s = time.perf_counter() - started
    fit_mib = _status_mib("VmHWM") - before
    started = time.perf_counter()
    placed = np.asarray(place(new))
    place_s = time.perf_counter() - started
    sample = np.random.default_rng(1).choice(n_base, size=min(SAMPLE, n_base), replace=False)
    kept = preservation(base, coords, sample)
    real_rows = sample[is_real[sample]]
    all_v, all_c = np.concatenate([base, new]), np.concatenate([coords, placed])
    new_rows = np.arange(n_base, n_base + len(new))
    return {
        "method": method,
        "n": n_base,
        "fit_s": round(fit_s, 2),
        "fit_peak_mib": round(fit_mib, 1),
        "kept10": round(float(kept.mean()), 4),
        "kept10_real": round(float(preservation(base, coords, real_rows).mean()), 4),
        "place_1000_s": round(place_s, 2),
        "placed_kept10": round(float(preservation(all_v, all_c, new_rows).mean()), 4),
    }


def pca_reduce(x: Floats, dims: int = 50) -> tuple[Floats, Any]:
    mean = x.mean(axis=0)
    cov = np.cov((x - mean).T.astype(np.float32))
    _, vecs = np.linalg.eigh(cov)
    basis = vecs[:, ::-1][:, :dims].astype(np.float32)
    return ((x - mean) @ basis).astype(np.float32), lambda v: ((v - mean) @ basis).astype(
        np.float32
    )


def preservation(vectors: Floats, coords: npt.NDArray[Any], rows: npt.NDArray[Any]) -> Floats:
    """Per row: share of its K nearest in `vectors` (cosine) among its K nearest in `coords`."""
    from picmatch._sys import faiss

    fa = faiss()
    full = fa.IndexFlatIP(vectors.shape[1])
    full.add(np.ascontiguousarray(vectors, np.float32))
    _, near_full = full.search(np.ascontiguousarray(vectors[rows], np.float32), K + 1)
    flat = fa.IndexFlatL2(2)
    c = np.ascontiguousarray(coords, np.float32)
    flat.add(c)
    _, near_map = flat.search(c[rows], K + 1)
    out = np.empty(len(rows), np.float32)
    for i, row in enumerate(rows):
        a = [j for j in near_full[i].tolist() if j != row][:K]
        b = [j for j in near_map[i].tolist() if j != row][:K]
        out[i] = len(set(a) & set(b)) / K
    return out


# ---- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--cache", type=Path, default=HERE / "data" / "cache")
    parser.add_argument("--model-cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("map_projection.json"))
    parser.add_argument(
        "--one", nargs=3, metavar=("METHOD", "VECTORS", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one[0], Path(args.one[1]), int(args.one[2]))))
        return 0
    from picmatch.config import default_cache_dir

    model_cache = args.model_cache or default_cache_dir() / "models"
    args.cache.mkdir(parents=True, exist_ok=True)
    real, _ = real_vectors(args.cache, model_cache)
    print(f"{len(real)} real vectors", flush=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="map-bench-") as tmp:
        for n in args.sizes:
            fill = mixture_fill(real, max(0, n + NEW - len(real)), seed=n)
            rng = np.random.default_rng(n)
            vectors = np.concatenate([real, fill])[: n + NEW]
            is_real = np.arange(len(vectors)) < len(real)
            order = rng.permutation(len(vectors))
            path = Path(tmp) / f"v{n}.npz"
            np.savez(path, vectors=vectors[order], is_real=is_real[order])
            del vectors, fill
            for method in args.methods:
                print(f"  {method} at {n:,} ...", flush=True)
                done = subprocess.run(
                    [sys.executable, __file__, "--one", method, str(path), str(n)],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONWARNINGS": "ignore"},
                )
                if done.returncode != 0:
                    print(done.stderr[-2000:], flush=True)
                    continue
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print("   ", results[-1], flush=True)
    print(table(results))
    args.out.write_text(json.dumps({"results": results, "real_vectors": len(real)}, indent=2))
    return 0


def table(results: list[dict[str, Any]]) -> str:
    header = (
        "| method | N | fit s | peak MiB | kept 10-NN | (real pts) | place 1k s | placed kept |"
    )
    lines = [header, "|" + "---|" * 8]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['n']:,} | {r['fit_s']} | {r['fit_peak_mib']} | {r['kept10']} "
            f"| {r['kept10_real']} | {r['place_1000_s']} | {r['placed_kept10']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
