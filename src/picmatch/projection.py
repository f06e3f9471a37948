"""2-D positions for the library map: PCA to 50 dimensions, then t-SNE (openTSNE, picmatch[map]).

Chosen by measurement (benchmarks/map_projection.py, numbers in the README): over PCA-50, on
real-like vectors, openTSNE kept 2-4x more of each image's 10 nearest neighbours than UMAP
(umap-learn) and ran 3x faster at 100k on 2 cores; PCA alone keeps almost none. New images are
not pushed through t-SNE again: each is placed among its most similar already-mapped images
(`place_near`), which keeps it beside what it resembles. Coordinates fill the unit square.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import available_cpus
from picmatch.errors import MissingDependencyError

Floats = npt.NDArray[np.float32]
PCA_DIMS = 50
PERPLEXITY = 30.0
MIN_FOR_TSNE = 10  # fewer points: PCA alone
TSNE_ITERATIONS = 250 + 500  # openTSNE's early exaggeration + main phase
CALLBACK_EVERY = 50
PLACE_NEIGHBOURS = 5
PLACE_RADIUS = 0.03  # neighbours farther than this from the best one are another cluster
SEED = 0

IterationCallback = Callable[[int, int], None]  # (iterations done, total)


def require_tsne() -> Any:
    """openTSNE's TSNE class, imported on first use, or an error naming the extra to install."""
    try:
        from openTSNE import TSNE
    except ImportError:
        raise MissingDependencyError("openTSNE", "map") from None
    return TSNE


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


def fit_positions(vectors: Floats, *, progress: IterationCallback | None = None) -> Floats:
    """Unit-square positions for `vectors` (n x d, L2-normalised): similar rows land close."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 3:
        return _to_unit_square(np.asarray(vectors[:, :2], np.float32))
    reduced = pca_reduce(vectors)
    if n < MIN_FOR_TSNE:
        return _to_unit_square(reduced[:, :2])
    tsne_cls = require_tsne()
    done = [0]

    def report(*_: object) -> bool:
        done[0] = min(TSNE_ITERATIONS, done[0] + CALLBACK_EVERY)
        if progress is not None:
            progress(done[0], TSNE_ITERATIONS)
        return False  # go on

    tsne = tsne_cls(
        perplexity=min(PERPLEXITY, (n - 1) / 3),
        metric="cosine",
        n_jobs=available_cpus(),
        random_state=SEED,
        callbacks=report,
        callbacks_every_iters=CALLBACK_EVERY,
        verbose=False,
    )
    coords = np.asarray(tsne.fit(reduced), np.float32)
    return _to_unit_square(coords)


def place_near(neighbour_xy: Floats, scores: Floats, *, seed: int = SEED) -> Floats:
    """Positions for new points from their mapped neighbours.

    `neighbour_xy` is m x k x 2 (NaN where a neighbour is missing), `scores` m x k cosine
    similarities. Each point goes beside its most similar neighbour: to the similarity-weighted
    mean of the neighbours within `PLACE_RADIUS` of that one (the others sit in another cluster;
    averaging across clusters would put the point in the empty space between them), plus a
    jitter of a tenth of the spread. A point without neighbours goes to the centre.
    """
    m = len(neighbour_xy)
    out = np.full((m, 2), 0.5, np.float32)
    rng = np.random.default_rng(seed)
    for row in range(m):
        valid = ~np.isnan(neighbour_xy[row, :, 0])
        if not valid.any():
            continue
        xy, score = neighbour_xy[row, valid], scores[row, valid]
        anchor = xy[int(np.argmax(score))]
        near = np.linalg.norm(xy - anchor, axis=1) <= PLACE_RADIUS
        weights = np.exp(20.0 * (score[near] - score.max()))
        centre = (weights[:, None] * xy[near]).sum(axis=0) / weights.sum()
        spread = float(np.linalg.norm(xy[near] - centre, axis=1).mean()) if near.sum() > 1 else 0
        out[row] = centre + rng.normal(0.0, max(spread, 1e-3) * 0.1, 2)
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
