"""Find the duplicate groups of a library: stream the records, fill the hash cache, group.

`Library.duplicates` calls `find_duplicates`; nothing here knows about the CLI or HTTP.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from picmatch._sys import atomic_save
from picmatch.dupe_pairs import EXACT_LIMIT, UNKNOWN_DISTANCE, candidate_pairs
from picmatch.duplicates import (
    BACKGROUND_RANK,
    KEEPER_RULE,
    TIER_THRESHOLDS,
    FileFacts,
    Pairs,
    Thresholds,
    Tier,
    accepted,
    choose_keeper,
    keeper_key,
    star_groups,
)
from picmatch.errors import ConfigError
from picmatch.evidence import EvidenceCache
from picmatch.results import DupeGroup, DupeMember, DupeReport
from picmatch.store.base import Payload, VectorStore, path_in_folder

NEIGHBOURS = 16  # embedding neighbours looked at per image


@dataclass(frozen=True)
class DupeScope:
    """Which records to look at and which to protect."""

    roots: tuple[str, ...] = ()  # only records inside these (empty: all)
    folders: tuple[str, ...] = ()  # and, if given, inside these
    skip: tuple[str, ...] = ()  # never inside these (review folders of earlier moves)
    keep_in: tuple[str, ...] = ()  # members inside these are protected keepers

    @classmethod
    def of(
        cls,
        roots: Iterable[str | os.PathLike[str]],
        folders: Iterable[str | os.PathLike[str]],
        skip: Iterable[str | os.PathLike[str]],
        keep_in: Iterable[str | os.PathLike[str]],
    ) -> DupeScope:
        return cls(_absolute(roots), _absolute(folders), _absolute(skip), _absolute(keep_in))

    def wants(self, path: str) -> bool:
        if self.roots and not any(path_in_folder(path, r) for r in self.roots):
            return False
        if self.folders and not any(path_in_folder(path, f) for f in self.folders):
            return False
        return not any(path_in_folder(path, s) for s in self.skip)

    def protects(self, path: str) -> bool:
        return any(path_in_folder(path, f) for f in self.keep_in)


def _absolute(paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    return tuple(str(Path(p).expanduser().absolute()) for p in paths)


def tier_thresholds(tier: Tier | str, min_score: float | None) -> tuple[Tier, Thresholds]:
    try:
        chosen = Tier(tier)
    except ValueError:
        names = ", ".join(t.value for t in Tier)
        raise ConfigError(f"unknown tier {tier!r}; choose one of {names}") from None
    thresholds = TIER_THRESHOLDS[chosen]
    if min_score is not None:
        if not -1.0 <= min_score <= 1.0:
            raise ConfigError(f"--min-score must be between -1 and 1, got {min_score}")
        thresholds = replace(thresholds, strong=min_score, floor=min(thresholds.floor, min_score))
    return chosen, thresholds


def find_duplicates(
    store: VectorStore,
    space: str,
    evidence: EvidenceCache,
    scope: DupeScope,
    tier: Tier | str,
    min_score: float | None,
    max_pixels: int,
    workers: int,
    cache: Path | None = None,
) -> DupeReport:
    """Groups of the records in `scope`. Candidate pairs do not depend on the tier, so they are
    kept in `cache` (a file) and reused while the same records are in scope: a second run on an
    unchanged library reads payloads and hashes only, no vectors."""
    started = time.perf_counter()
    chosen, thresholds = tier_thresholds(tier, min_score)
    found = [(i, p) for i, p in store.iter_payloads(space) if scope.wants(p.path)]
    found.sort(key=lambda item: item[0])
    ids = [i for i, _ in found]
    payloads = [p for _, p in found]
    if len(ids) < 2:
        return DupeReport(chosen, thresholds.explain(), KEEPER_RULE, len(ids), 0, 0.0, ())
    digests = [p.content_hash for p in payloads]
    hashed = evidence.fill([(p.content_hash, p.path) for p in payloads], max_pixels, workers)
    cached = evidence.get(digests)
    known = np.array([d in cached for d in digests], dtype=bool)
    hashes = np.array([cached.get(d, (0, 0))[0] for d in digests], dtype=np.uint64)
    mirrors = np.array([cached.get(d, (0, 0))[1] for d in digests], dtype=np.uint64)
    key = _fingerprint(ids, digests, known)
    every = _load_pairs(cache, key)
    vectors: npt.NDArray[np.floating] | None = None
    if every is None:
        vectors = _vectors(store, space, ids)
        every = candidate_pairs(
            vectors,
            hashes,
            mirrors,
            known,
            digests,
            k=NEIGHBOURS,
            min_score=CANDIDATE_SCORE,
            max_distance=CANDIDATE_DISTANCE,
        )
        _save_pairs(cache, key, every)
    pairs = every.select(accepted(every, thresholds) & (every.score >= _lowest(thresholds)))
    if chosen is Tier.EXACT:
        pairs = pairs.select(_same_pixels(pairs, payloads))
    facts = [_facts(p, scope) for p in payloads]
    members = star_groups(len(ids), pairs, _ranks(facts))
    if members and vectors is None:
        wanted = sorted({ids[m] for group in members for m in group})
        vectors = _vectors(store, space, ids, only=set(wanted))
    evidence_of = (vectors, hashes, mirrors, known)
    groups = [_group(m, ids, payloads, facts, *evidence_of) for m in members]  # type: ignore[arg-type]
    groups.sort(key=lambda g: (-len(g.members), g.keeper.path))
    seconds = time.perf_counter() - started
    return DupeReport(
        chosen, thresholds.explain(), KEEPER_RULE, len(ids), hashed, seconds, tuple(groups)
    )


CANDIDATE_SCORE = 0.40  # below every tier's lowest score: the candidates serve every tier
CANDIDATE_DISTANCE = 16  # above every tier's hash distance


def _lowest(t: Thresholds) -> float:
    return min(t.strong, t.floor, t.margin_floor)


def _vectors(
    store: VectorStore, space: str, ids: Sequence[int], only: set[int] | None = None
) -> npt.NDArray[np.floating]:
    """The vectors of `ids`, in order (rows outside `only` left zero), streamed in batches;
    float16 past the exact scan (half the memory at 1M images), scores stay float32."""
    dtype = np.float16 if len(ids) > EXACT_LIMIT else np.float32
    row = {image_id: n for n, image_id in enumerate(ids)}
    out: npt.NDArray[np.floating] | None = None
    if only is not None:
        records = store.get(space, sorted(only))
        out = np.zeros((len(ids), len(records[0].vector) if records else 1), dtype=dtype)
        for r in records:
            out[row[r.id]] = r.vector
        return out
    for batch in store.iter_records(space):
        for r in batch:
            if r.id in row:
                if out is None:
                    out = np.zeros((len(ids), len(r.vector)), dtype=dtype)
                out[row[r.id]] = r.vector
    assert out is not None
    return out


def _fingerprint(ids: Sequence[int], digests: Sequence[str], known: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{NEIGHBOURS}:{CANDIDATE_SCORE}:{CANDIDATE_DISTANCE}:{BACKGROUND_RANK}".encode())
    digest.update(np.asarray(ids, dtype=np.int64).tobytes())
    digest.update("\n".join(digests).encode())
    digest.update(np.packbits(known).tobytes())
    return digest.hexdigest()


def _load_pairs(cache: Path | None, key: str) -> Pairs | None:
    if cache is None:
        return None
    try:
        with np.load(cache, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return Pairs(
                data["i"], data["j"], data["score"], data["distance"], data["same"], data["margin"]
            )
    except (OSError, KeyError, ValueError):
        return None


def _save_pairs(cache: Path | None, key: str, pairs: Pairs) -> None:
    if cache is None:
        return

    def save(name: str) -> None:
        with open(name, "wb") as f:
            np.savez(
                f,
                key=np.array(key),
                i=pairs.i,
                j=pairs.j,
                score=pairs.score,
                distance=pairs.distance,
                same=pairs.same_bytes,
                margin=pairs.margin,
            )

    try:
        atomic_save(cache, save)
    except OSError:
        return  # a read-only library still answers, it just does not remember


def _same_pixels(pairs: Pairs, payloads: Sequence[Payload]) -> npt.NDArray[np.bool_]:
    """Exact tier: same bytes, or same size with identical hashes and a near-1 score."""
    same_size = np.array(
        [
            (payloads[a].width, payloads[a].height) == (payloads[b].width, payloads[b].height)
            for a, b in zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)
        ],
        dtype=bool,
    )
    mask: npt.NDArray[np.bool_] = pairs.same_bytes | (same_size & (pairs.distance == 0))
    return mask


def _facts(p: Payload, scope: DupeScope) -> FileFacts:
    return FileFacts(p.path, p.width, p.height, p.size, p.mtime_ns, scope.protects(p.path))


def _ranks(facts: Sequence[FileFacts]) -> list[int]:
    """Rank of each item by the keeper rule (0 = best), so better keepers become centres."""
    order = sorted(range(len(facts)), key=lambda k: keeper_key(facts[k]))
    ranks = [0] * len(facts)
    for rank, index in enumerate(order):
        ranks[index] = rank
    return ranks


def _group(
    items: list[int],
    ids: Sequence[int],
    payloads: Sequence[Payload],
    facts: Sequence[FileFacts],
    vectors: np.ndarray,
    hashes: np.ndarray,
    mirrors: np.ndarray,
    known: np.ndarray,
) -> DupeGroup:
    keeper = items[choose_keeper([facts[i] for i in items])]
    members = []
    for item in items:
        p = payloads[item]
        pair = vectors[[item, keeper]].astype(np.float32)
        score = float(pair[0] @ pair[1]) if item != keeper else 1.0
        distance: int | None = None
        if known[item] and known[keeper]:
            direct = int(np.bitwise_count(hashes[item] ^ hashes[keeper]))
            flipped = int(np.bitwise_count(hashes[keeper] ^ mirrors[item]))
            distance = min(direct, flipped)
        same = bool(p.content_hash) and p.content_hash == payloads[keeper].content_hash
        members.append(
            DupeMember(
                ids[item],
                p.path,
                p.width,
                p.height,
                p.size,
                p.mtime_ns,
                keeper=item == keeper,
                protected=facts[item].protected,
                score=round(min(1.0, score), 4),
                distance=distance if distance is None or distance < UNKNOWN_DISTANCE else None,
                same_bytes=same,
            )
        )
    members.sort(key=lambda m: (not m.keeper, -m.score, m.path))
    return DupeGroup(tuple(members))
