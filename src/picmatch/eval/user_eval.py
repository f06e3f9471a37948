"""`picmatch eval`: how well a user's own library finds edited copies of its images.

Samples images from the library, makes the protocol's 17 edited copies of each in a temporary
folder (deleted afterwards) and searches the library with every copy twice:

* as a **positive**: the copy should find its original, ideally first;
* as a **negative**: the same search with the original left out (`exclude`), so whatever
  comes first is an image the copy was *not* made from: realistic negatives, edited photos
  like the library's own that are not in it. Other copies of the original stored under other
  names are left out too (same content hash); near-duplicates that are not byte-identical
  still count as false positives, so in a library full of such variants the threshold errs
  high.

From these: recall@1 and @10 per edit, µAP over the pooled top-10 results, and the score
threshold that only 1 % of negatives exceed, with the recall that threshold keeps. The library
is only read, never written.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from picmatch.errors import ConfigError, ImageDecodeError
from picmatch.eval.metrics import micro_ap, recall_at_fpr
from picmatch.eval.transforms import TRANSFORMS, edit_rng
from picmatch.images.decode import decode_image
from picmatch.library import Library
from picmatch.results import Hit

K = 10
FPR = 0.01
MAX_SIDE = 1024  # originals are edited at most this large, as in the public protocol
DEFAULT_SAMPLE = 50

ProgressCallback = Callable[[int, int], None]  # (queries done, queries in all)


@dataclass(frozen=True)
class EditScore:
    edit: str
    queries: int
    recall_at_1: float
    recall_at_10: float


@dataclass(frozen=True)
class UserEvalReport:
    images: int  # images in the library
    sampled: int  # originals the copies were made from
    per_edit: tuple[EditScore, ...]
    recall_at_1: float
    recall_at_10: float
    micro_ap: float
    threshold: float  # score that only `FPR` of the negatives' first results exceed
    recall_at_threshold: float  # positives found first with a score above it
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason) of unreadable sampled images


@dataclass(frozen=True, order=True)
class _Original:
    id: int
    path: str
    content_hash: str


@dataclass
class _Outcome:
    """One edited copy: the results of its positive and of its negative search."""

    edit: str
    original: int
    positive: list[Hit]
    negative: list[Hit]


def evaluate_library(
    lib: Library,
    *,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> UserEvalReport:
    """Measure `lib` on edited copies of `sample` of its images (see the module doc)."""
    if sample < 1:
        raise ConfigError(f"the sample must hold at least one image, got {sample}")
    candidates = _originals(lib)
    if len(candidates) < 2:
        raise ConfigError(
            "picmatch eval needs a library of at least 2 images; index more with: picmatch index"
        )
    random.Random(seed).shuffle(candidates)
    with tempfile.TemporaryDirectory(prefix="picmatch-eval-") as tmp:
        run = _Run(lib, seed, Path(tmp), _twins(candidates), progress)
        run.query_copies(candidates, min(sample, len(candidates)))
    if not run.outcomes:
        raise ConfigError("none of the sampled images could be read; re-index the library")
    return _report(lib.count(), run.outcomes, run.skipped)


def _originals(lib: Library) -> list[_Original]:
    if lib.count() == 0:
        return []
    payloads = lib.store.iter_payloads(lib.space)
    return sorted(_Original(i, p.path, p.content_hash) for i, p in payloads)


def _twins(candidates: Sequence[_Original]) -> dict[str, frozenset[int]]:
    """Ids of every image per content hash: byte-identical copies are left out of negatives."""
    groups: dict[str, set[int]] = {}
    for original in candidates:
        groups.setdefault(original.content_hash, set()).add(original.id)
    return {digest: frozenset(ids) for digest, ids in groups.items()}


class _Run:
    """Makes the copies in `folder`, queries them, and keeps the outcomes."""

    def __init__(
        self,
        lib: Library,
        seed: int,
        folder: Path,
        twins: dict[str, frozenset[int]],
        progress: ProgressCallback | None,
    ) -> None:
        self.lib, self.seed, self.folder, self.twins = lib, seed, folder, twins
        self.progress = progress or (lambda done, total: None)
        self.outcomes: list[_Outcome] = []
        self.skipped: list[tuple[str, str]] = []

    def query_copies(self, candidates: Sequence[_Original], sample: int) -> None:
        """Every copy of the first `sample` readable candidates; unreadable ones are skipped."""
        total = sample * len(TRANSFORMS)
        for original in candidates:
            if len(self.outcomes) == total:
                return
            try:
                image = _load(original.path, self.lib.max_pixels)
            except ImageDecodeError as exc:
                self.skipped.append((original.path, exc.reason))
                continue
            for edit in TRANSFORMS:
                copy = self._write_copy(image, original, edit)
                self.outcomes.append(self._query(copy, edit, original))
                self.progress(len(self.outcomes), total)

    def _write_copy(self, image: Image.Image, original: _Original, edit: str) -> Path:
        copy = TRANSFORMS[edit](image, edit_rng(self.seed, str(original.id), edit))
        path = self.folder / f"{original.id}-{edit}.png"
        copy.save(path, format="PNG", compress_level=1)
        return path

    def _query(self, copy: Path, edit: str, original: _Original) -> _Outcome:
        vector = self.lib.query_vector(copy)
        positive = self.lib.search_vector(vector, K)
        negative = self.lib.search_vector(vector, K, exclude=self.twins[original.content_hash])
        return _Outcome(edit, original.id, positive, negative)


def _load(path: str, max_pixels: int) -> Image.Image:
    decoded = decode_image(path, max_pixels=max_pixels, min_side=MAX_SIDE)
    image = Image.fromarray(decoded.pixels)
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _report(
    images: int, outcomes: Sequence[_Outcome], skipped: Sequence[tuple[str, str]]
) -> UserEvalReport:
    """The protocol's metrics; negatives' results enter µAP as wrong pairs."""
    pairs = [(h.score, h.id == o.original) for o in outcomes for h in o.positive]
    pairs += [(h.score, False) for o in outcomes for h in o.negative]
    firsts = [(o.positive[0].score, o.positive[0].id == o.original) for o in outcomes]
    negatives = [o.negative[0].score if o.negative else -1.0 for o in outcomes]
    point = recall_at_fpr(firsts, negatives, FPR)
    return UserEvalReport(
        images=images,
        sampled=len(outcomes) // len(TRANSFORMS),
        per_edit=tuple(_edit_score(e, [o for o in outcomes if o.edit == e]) for e in TRANSFORMS),
        recall_at_1=_recall(outcomes, 1),
        recall_at_10=_recall(outcomes, K),
        micro_ap=micro_ap(pairs, len(outcomes)),
        threshold=point.threshold,
        recall_at_threshold=point.recall,
        skipped=tuple(skipped),
    )


def _edit_score(edit: str, outcomes: Sequence[_Outcome]) -> EditScore:
    return EditScore(edit, len(outcomes), _recall(outcomes, 1), _recall(outcomes, K))


def _recall(outcomes: Sequence[_Outcome], k: int) -> float:
    found = [any(h.id == o.original for h in o.positive[:k]) for o in outcomes]
    return sum(found) / len(found) if found else 0.0
