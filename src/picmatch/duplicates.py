"""Near-duplicate groups: which pairs count, how pairs become groups, which member is kept.

Two evidences decide a pair, because they fail on opposite edits: the embedding score (cosine)
survives crops, mirrors, rotations and captions; the perceptual-hash distance survives blur,
recompression, small resizes and greyscale, where the embedding drifts. A pair is accepted when
its score alone is high enough, or its hash is close *and* its score is above a floor (alone, a
close hash also matches unrelated flat images, such as clip-art on white), or its score stands
far above both images' background (the score each has with its 20th nearest neighbour): a
rotated copy scores lower than siblings such as two letters of one font, but its siblings
score with everything around them, while the copy stands out from its neighbourhood.

Grouping never chains: accepted pairs form stars around a centre (the member with the most
accepted pairs), so every member matches the centre directly; a member that matches another
star's centre and a larger share of its members moves there. A member left over (all its
matches were taken by other groups) joins the group it matches for more than half of the
members, or none. Connected components over the same pairs merge unrelated images through chains.

The keeper of a group is chosen by one rule, in this order: a member inside a `keep_in`
folder, the largest pixel count, a lossless format over a lossy one, the largest file, the
oldest file (then the path, for a stable answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

LOSSLESS = frozenset({".png", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".jxl"})
BACKGROUND_RANK = 20  # an image's background: its score with its 20th nearest neighbour
KEEPER_RULE = (
    "keeper: inside --keep-in, then most pixels, then lossless over lossy format, "
    "then largest file, then oldest"
)


class Tier(StrEnum):
    EXACT = "exact"  # same bytes, or the same pixels
    COPY = "copy"  # edited copies: resized, recompressed, cropped, filtered, mirrored, captioned
    SIMILAR = "similar"  # the same scene, e.g. burst shots


@dataclass(frozen=True)
class Thresholds:
    """A pair is accepted when score >= strong, or distance <= max_distance and score >= floor,
    or score >= margin_floor and its margin (score above both images' background) >= margin."""

    strong: float
    floor: float
    max_distance: int
    margin_floor: float = 2.0  # above any score: no margin path
    margin: float = 2.0

    def explain(self) -> str:
        text = (
            f"a pair counts when its embedding score is >= {self.strong:.2f}, or its hash "
            f"distance is <= {self.max_distance} of 64 bits and its score is >= {self.floor:.2f}"
        )
        if self.margin_floor <= 1.0:
            text += (
                f", or its score is >= {self.margin_floor:.2f} and stands {self.margin:.2f} above "
                f"what both images score with their {BACKGROUND_RANK}th nearest neighbour"
            )
        return text


# Chosen on the tuning half of the planted set of benchmarks/dupes_quality.py (see its report);
# the held-out half gives the figures in the README.
TIER_THRESHOLDS: dict[Tier, Thresholds] = {
    Tier.EXACT: Thresholds(strong=0.995, floor=0.995, max_distance=0),
    Tier.COPY: Thresholds(0.86, 0.50, 8, margin_floor=0.75, margin=0.25),
    Tier.SIMILAR: Thresholds(0.75, 0.45, 14, margin_floor=0.60, margin=0.20),
}


@dataclass(frozen=True)
class Pairs:
    """Candidate pairs (i < j) over items 0..n-1 with both evidences."""

    i: IntArray
    j: IntArray
    score: FloatArray  # cosine similarity of the embeddings
    distance: IntArray  # pHash Hamming distance (direct or mirrored), 64 where unknown
    same_bytes: npt.NDArray[np.bool_]
    margin: FloatArray  # score minus the higher background of the two images (-2: unknown)

    def __len__(self) -> int:
        return len(self.i)

    def select(self, mask: npt.NDArray[np.bool_]) -> Pairs:
        return Pairs(
            self.i[mask],
            self.j[mask],
            self.score[mask],
            self.distance[mask],
            self.same_bytes[mask],
            self.margin[mask],
        )


def accepted(pairs: Pairs, thresholds: Thresholds) -> npt.NDArray[np.bool_]:
    by_score = pairs.score >= thresholds.strong
    by_hash = (pairs.distance <= thresholds.max_distance) & (pairs.score >= thresholds.floor)
    by_margin = (pairs.score >= thresholds.margin_floor) & (pairs.margin >= thresholds.margin)
    mask: npt.NDArray[np.bool_] = by_score | by_hash | by_margin | pairs.same_bytes
    return mask


def strength(pairs: Pairs) -> FloatArray:
    """One number per pair for ordering: the score, raised by a close hash."""
    bonus = np.clip(1.0 - pairs.distance / 32.0, 0.0, 1.0) * 0.5
    out: FloatArray = (pairs.score + bonus + pairs.same_bytes).astype(np.float32)
    return out


def star_groups(n: int, pairs: Pairs, preference: Sequence[int] | None = None) -> list[list[int]]:
    """Groups of items from accepted pairs, each a star around its first item (the centre).

    Centres are taken by number of pairs, then total strength, then `preference` (lower first).
    """
    if len(pairs) == 0:
        return []
    power = strength(pairs)
    neighbours: dict[int, dict[int, float]] = {}
    for a, b, w in zip(pairs.i.tolist(), pairs.j.tolist(), power.tolist(), strict=True):
        neighbours.setdefault(a, {})[b] = w
        neighbours.setdefault(b, {})[a] = w
    rank = preference or range(n)
    order = sorted(
        neighbours, key=lambda u: (-len(neighbours[u]), -sum(neighbours[u].values()), rank[u], u)
    )
    group_of: dict[int, int] = {}
    groups: list[list[int]] = []
    for centre in order:
        if centre in group_of:
            continue
        free = [v for v in neighbours[centre] if v not in group_of]
        if not free:
            continue
        free.sort(key=lambda v: -neighbours[centre][v])
        for member in [centre, *free]:
            group_of[member] = len(groups)
        groups.append([centre, *free])
    _settle(neighbours, groups, group_of)
    for u in order:
        if u not in group_of:
            _join_majority(u, neighbours[u], groups, group_of)
    return [g for g in groups if len(g) > 1]


def _settle(
    neighbours: dict[int, dict[int, float]], groups: list[list[int]], group_of: dict[int, int]
) -> None:
    """Move a member to another group when it matches that group's centre and a larger share
    of its members (a bridge pair must not drag an image into the wrong star)."""
    for g, members in enumerate(groups):
        for v in list(members[1:]):
            links = neighbours[v]
            here = sum(1 for m in members if m in links) / max(1, len(members) - 1)
            best, best_share = g, here
            for h in {group_of[m] for m in links if m in group_of} - {g}:
                other = groups[h]
                if other[0] not in links:
                    continue
                share = sum(1 for m in other if m in links) / len(other)
                if share > best_share:
                    best, best_share = h, share
            if best != g and len(members) > 2:
                members.remove(v)
                groups[best].append(v)
                group_of[v] = best


def _join_majority(
    u: int, links: dict[int, float], groups: list[list[int]], group_of: dict[int, int]
) -> None:
    votes: dict[int, int] = {}
    for v in links:
        if v in group_of:
            votes[group_of[v]] = votes.get(group_of[v], 0) + 1
    if not votes:
        return
    best = max(votes, key=lambda g: (votes[g] / len(groups[g]), -g))
    if 2 * votes[best] > len(groups[best]):
        group_of[u] = best
        groups[best].append(u)


@dataclass(frozen=True)
class FileFacts:
    """What the keeper rule looks at."""

    path: str
    width: int
    height: int
    size: int
    mtime_ns: int
    protected: bool = False  # inside a --keep-in folder


def keeper_key(f: FileFacts) -> tuple[int, int, int, int, int, str]:
    """Sort key: the smallest key is the best keeper."""
    lossless = PurePath(f.path).suffix.lower() in LOSSLESS
    return (-int(f.protected), -f.width * f.height, -int(lossless), -f.size, f.mtime_ns, f.path)


def choose_keeper(members: Sequence[FileFacts]) -> int:
    """Index of the keeper among `members`."""
    return min(range(len(members)), key=lambda k: keeper_key(members[k]))


def pair_lookup(pairs: Pairs) -> dict[tuple[int, int], int]:
    """(min, max) item pair -> row in `pairs`."""
    return {
        (min(a, b), max(a, b)): row
        for row, (a, b) in enumerate(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))
    }


def merge_pairs(parts: Sequence[Pairs]) -> Pairs:
    """One table from several, each pair once (the first occurrence wins)."""
    i = np.concatenate([p.i for p in parts]) if parts else np.zeros(0, np.int64)
    j = np.concatenate([p.j for p in parts]) if parts else np.zeros(0, np.int64)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keys = lo.astype(np.uint64) << np.uint64(32) | hi.astype(np.uint64)
    _, first = np.unique(keys, return_index=True)
    first = np.sort(first)
    merged = Pairs(
        lo,
        hi,
        np.concatenate([p.score for p in parts]).astype(np.float32),
        np.concatenate([p.distance for p in parts]).astype(np.int64),
        np.concatenate([p.same_bytes for p in parts]).astype(bool),
        np.concatenate([p.margin for p in parts]).astype(np.float32),
    )
    keep = np.zeros(len(keys), dtype=bool)
    keep[first] = True
    return merged.select(keep & (lo != hi))
