"""Vectors with the statistics of real image embeddings, for store benchmarks at scale.

Real vectors: every raster image of the evaluation packages (``benchmarks/datasets.py``:
GNOME/MATE wallpapers, Tux Paint stamps) plus scikit-image's sample photos, each as its
original and 7 augmented views (crops, flip, colour jitter, aspect, rotation, JPEG), embedded
through ``Library.index`` with the default model and pipeline of a new library. A share of the
source images is held out with all its views: their originals are the *real queries*.

Synthetic vectors: a Gaussian with the mean and full covariance of the real base vectors,
sampled, negatives clipped (real embeddings are non-negative) and L2-normalised, as the
default pipeline's power-normalised output is. A Gaussian has no clusters, so it is harder
than a real library (a pessimistic fill); isotropic random vectors are far harder still and
predict nothing. A base of N vectors = the real base vectors + the first N - R synthetic ones.

Everything generated is cached under ``--cache`` (default /tmp/picmatch-reallike), never in
the repository: real.npz, synthetic.f32 (float32 rows, grown on demand), truth_<N>.npy.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from picmatch.eval.transforms import TRANSFORMS

F32 = npt.NDArray[np.float32]
DIM = 1280
DEFAULT_CACHE = Path("/tmp/picmatch-reallike")
VIEWS = ("crop70", "hflip", "color_jitter", "crop50", "aspect", "rotate", "jpeg30")
HELD_OUT = 150  # source images whose views never enter the base; their originals are queries
SYNTHETIC_QUERIES = 200
MAX_SIDE = 640
SEED = 8
_CHUNK = 50_000


@dataclass
class RealLike:
    real_base: F32  # (R, DIM) real vectors in every base
    real_queries: F32  # held-out originals
    synthetic_queries: F32  # held-out Gaussian draws
    cache: Path

    def base(self, n: int) -> F32:
        """The first n base vectors (real ones first), memory-mapped where possible."""
        if n <= len(self.real_base):
            return self.real_base[:n]
        path = self.cache / f"base_{n}.npy"
        if path.exists():
            cached: F32 = np.load(path, mmap_mode="r")
            if cached.shape == (n, DIM):
                return cached
        synthetic = self.synthetic(n - len(self.real_base))
        out = np.lib.format.open_memmap(
            self.cache / f"base_{n}.npy", mode="w+", dtype=np.float32, shape=(n, DIM)
        )
        out[: len(self.real_base)] = self.real_base
        for start in range(0, len(synthetic), _CHUNK):
            block = synthetic[start : start + _CHUNK]
            out[len(self.real_base) + start : len(self.real_base) + start + len(block)] = block
        out.flush()
        return np.load(self.cache / f"base_{n}.npy", mmap_mode="r")

    def queries(self) -> tuple[F32, int]:
        """Synthetic queries then real queries; the second value is where the real ones start."""
        return np.vstack([self.synthetic_queries, self.real_queries]), len(self.synthetic_queries)

    def synthetic(self, n: int) -> F32:
        """The first n synthetic vectors; grown in whole blocks, one seed per block."""
        path = self.cache / "synthetic.f32"
        have = path.stat().st_size // (4 * DIM * _CHUNK) if path.exists() else 0
        if have * _CHUNK < n:
            sampler = _Sampler(self.real_base)
            with path.open("r+b" if have else "wb") as f:
                f.seek(have * _CHUNK * DIM * 4)
                for block in range(have, -(-n // _CHUNK)):
                    sampler.sample(_CHUNK, seed=1000 + block).tofile(f)
        return np.memmap(path, dtype=np.float32, mode="r", shape=(n, DIM))

    def truth(self, n: int, k: int = 10) -> npt.NDArray[np.int64]:
        """Exact top-k base rows of every query (BLAS over the base in chunks), cached."""
        path = self.cache / f"truth_{n}_{k}.npy"
        if path.exists():
            return np.load(path)
        found = exact_topk(self.base(n), self.queries()[0], k)
        np.save(path, found)
        return found


class _Sampler:
    def __init__(self, real: F32) -> None:
        x = real.astype(np.float64)
        self.mean = x.mean(axis=0)
        cov = np.cov(x, rowvar=False)
        cov[np.diag_indices_from(cov)] += 1e-6
        self.factor = np.linalg.cholesky(cov).astype(np.float32)

    def sample(self, n: int, seed: int) -> F32:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, DIM), dtype=np.float32)
        x = z @ self.factor.T + self.mean.astype(np.float32)
        np.maximum(x, 0, out=x)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x.astype(np.float32)


def exact_topk(base: F32, queries: F32, k: int) -> npt.NDArray[np.int64]:
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for start in range(0, len(base), _CHUNK):
        sims = queries @ np.asarray(base[start : start + _CHUNK]).T
        s = np.concatenate([best_s, sims], axis=1)
        i = np.concatenate(
            [best_i, np.arange(start, start + sims.shape[1])[None].repeat(len(queries), 0)], axis=1
        )
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


def load(eval_root: Path, cache: Path = DEFAULT_CACHE) -> RealLike:
    """The real-like vector source; embeds the evaluation images once (a few minutes)."""
    cache.mkdir(parents=True, exist_ok=True)
    real = cache / "real.npz"
    if not real.exists():
        _embed_real(eval_root, real)
    with np.load(real) as data:
        vectors, groups, is_view = data["vectors"], data["groups"], data["is_view"]
    rng = np.random.default_rng(SEED)
    held = set(rng.choice(np.unique(groups), HELD_OUT, replace=False).tolist())
    out = np.array([g in held for g in groups])
    base = np.ascontiguousarray(vectors[~out])
    queries = np.ascontiguousarray(vectors[out & ~is_view])
    sampler = _Sampler(base)
    synthetic_queries = sampler.sample(SYNTHETIC_QUERIES, seed=SEED)
    return RealLike(base, queries, synthetic_queries, cache)


def _embed_real(eval_root: Path, out: Path) -> None:
    from picmatch.library import open_library

    sources = _source_images(eval_root)
    print(f"embedding {len(sources)} source images x {1 + len(VIEWS)} views ...", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="picmatch-reallike-") as tmp:
        views = Path(tmp) / "views"
        views.mkdir()
        for number, image in enumerate(sources):
            _write_views(image, number, views)
        with open_library(Path(tmp) / "lib") as lib:
            lib.index([views])
            ids = [i for i, _ in lib.store.iter_payloads(lib.space)]
            records = lib.store.get(lib.space, ids)
    names = [Path(r.payload.path).stem for r in records]
    np.savez(
        out,
        vectors=np.stack([r.vector for r in records]).astype(np.float32),
        groups=np.array([int(name.split("_")[0]) for name in names]),
        is_view=np.array([not name.endswith("_original") for name in names]),
    )
    print(f"embedded {len(records)} views in {time.perf_counter() - started:.0f} s", flush=True)


def _source_images(eval_root: Path) -> list[Image.Image]:
    import skimage.data

    from datasets import RASTER_SUFFIXES, load_on_white

    roots = eval_root / "cache" / "root"
    paths = sorted(p for p in roots.rglob("*") if p.suffix.lower() in RASTER_SUFFIXES)
    images = []
    for path in paths:
        try:
            image = load_on_white(path)
        except OSError:
            continue
        if min(image.size) >= 32:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            images.append(image)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "hubble_deep_field"):
        images.append(Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB"))
    return images


def _write_views(image: Image.Image, number: int, folder: Path) -> None:
    image.save(folder / f"{number:05d}_original.png")
    for view in VIEWS:
        rng = random.Random(f"{SEED}-{number}-{view}")
        TRANSFORMS[view](image, rng).save(folder / f"{number:05d}_{view}.png")
