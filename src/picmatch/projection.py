"""2-D positions for the library map: PCA to 50 dimensions, then UMAP (``picmatch[map]``).

Chosen by measurement (benchmarks/map_projection.py; numbers in the README): over PCA-50, UMAP
kept more of each image's 10 nearest neighbours than PCA alone and ran faster than openTSNE at
100k. New images are not pushed through UMAP again: each is placed at the score-weighted mean of
its nearest already-mapped neighbours (`place_near`), which keeps them beside what they resemble.
Coordinates are scaled into the unit square [0, 1]^2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from picmatch._sys import available_cpus
from picmatch.errors import MissingDependencyError

Floats = npt.NDArray[np.float32]
PCA_DIMS = 50
UMAP_NEIGHBOURS = 15
MIN_FOR_UMAP = 3 * UMAP_NEIGHBOURS  # fewer points: PCA alone (UMAP needs a neighbourhood)
PLACE_NEIGHBOURS = 5
JITTER = 0.003  # so identical images placed at one spot stay distinguishable


def require_umap() -> Callable[..., object]:
    """The UMAP class, imported on first use, or an error naming the extra that installs it."""
    try:
        import umap
    except ImportError:
        raise MissingDependencyError("umap-learn", "map") from None
    cls: Callable[..., object] = umap.UMAP
    return cls


def pca_reduce(vectors: Floats, dims: int = PCA_DIMS) -> Floats:
    """The first `dims` principal components of `vectors` (rows), float32."""
    x = np.asarray(vectors, np.float32)
    centred = x - x.mean(axis=0)
    dims = min(dims, x.shape[0], x.shape[1])
    cov = centred.T @ centred  # d x d: cheaper than an SVD of n x d for n >> d
    _, basis = np.linalg.eigh(cov.astype(np.float64))
    top = basis[:, ::-1][:, :dims].astype(np.float32)
    reduced: Floats = centred @ top
    return reduced


def fit_positions(vectors: Floats) -> Floats:
    """Unit-square positions for `vectors` (n x d, L2-normalised): similar rows land close."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 3:
        return _to_unit_square(np.asarray(vectors[:, :2], np.float32))
    reduced = pca_reduce(vectors)
    if n < MIN_FOR_UMAP:
        return _to_unit_square(reduced[:, :2])
    umap_cls = require_umap()
    model = umap_cls(
        n_neighbors=UMAP_NEIGHBOURS,
        min_dist=0.1,
        metric="cosine",
        n_jobs=available_cpus(),  # no fixed seed: UMAP is only reproducible on one thread,
        low_memory=True,  # which measured 3x slower
    )
    coords = np.asarray(model.fit_transform(reduced), np.float32)  # type: ignore[attr-defined]
    return _to_unit_square(coords)


def place_near(neighbour_xy: Floats, scores: Floats, *, seed: int = 0) -> Floats:
    """Positions for new points from their mapped neighbours.

    `neighbour_xy` is m x k x 2 (NaN where a neighbour is missing), `scores` m x k cosine
    similarities. Each point goes to the weighted mean of its neighbours, weights growing
    steeply with similarity, plus a tiny jitter; a point with no neighbour goes to the centre.
    """
    m = len(neighbour_xy)
    out = np.full((m, 2), 0.5, np.float32)
    if m == 0:
        return out
    valid = ~np.isnan(neighbour_xy[:, :, 0])
    weights = np.where(valid, np.exp(20.0 * (np.nan_to_num(scores) - 1.0)), 0.0)
    total = weights.sum(axis=1)
    has = total > 0
    xy = np.nan_to_num(neighbour_xy)
    out[has] = (weights[has, :, None] * xy[has]).sum(axis=1) / total[has, None]
    rng = np.random.default_rng(seed)
    out += rng.normal(0.0, JITTER, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _to_unit_square(coords: Floats) -> Floats:
    """Scale into [0, 1]^2 keeping the aspect; the 0.5 %..99.5 % range fills the square (stray
    points are clamped to the border rather than shrinking everything else)."""
    coords = np.asarray(coords, np.float64)
    if len(coords) == 0:
        return np.zeros((0, 2), np.float32)
    lo = np.percentile(coords, 0.5, axis=0)
    hi = np.percentile(coords, 99.5, axis=0)
    span = float(max((hi - lo).max(), 1e-9))
    centre = (lo + hi) / 2
    scaled = (coords - centre) / span * 0.96 + 0.5
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)
