"""Grouping without chaining, and the keeper rule, on hand-made pairs (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from picmatch.duplicates import FileFacts, Pairs, choose_keeper, star_groups


def pairs_of(edges: list[tuple[int, int]], score: float = 0.9) -> Pairs:
    i = np.array([a for a, _ in edges], dtype=np.int64)
    j = np.array([b for _, b in edges], dtype=np.int64)
    n = len(edges)
    scores = np.full(n, score, np.float32)
    return Pairs(i, j, scores, np.full(n, 64), np.zeros(n, bool), np.zeros(n, np.float32))


def test_a_chain_does_not_become_one_group() -> None:
    chain = [(k, k + 1) for k in range(9)]  # 0-1-2-...-9: connected components give 1 group
    groups = star_groups(10, pairs_of(chain))
    assert len(groups) > 1 and max(len(g) for g in groups) <= 3
    accepted = set(chain) | {(b, a) for a, b in chain}
    for group in groups:  # every member pairs with the centre directly
        assert all((group[0], m) in accepted for m in group[1:])


def test_a_dense_group_stays_whole_and_a_bridge_does_not_merge_two_groups() -> None:
    a = [(x, y) for x in range(5) for y in range(x + 1, 5)]
    b = [(x, y) for x in range(5, 9) for y in range(x + 1, 9)]
    groups = star_groups(9, pairs_of([*a, *b, (4, 5)]))
    assert sorted(sorted(g) for g in groups) == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]


def test_keeper_rule_pixels_then_lossless_then_size_then_age() -> None:
    big = FileFacts("/a/big.jpg", 100, 100, 10, 5)
    small_png = FileFacts("/a/small.png", 50, 50, 99, 1)
    assert choose_keeper([small_png, big]) == 1
    jpg, png = FileFacts("/a/x.jpg", 10, 10, 50, 1), FileFacts("/a/x.png", 10, 10, 40, 2)
    assert choose_keeper([jpg, png]) == 1
    old, new = FileFacts("/a/o.jpg", 10, 10, 50, 1), FileFacts("/a/n.jpg", 10, 10, 50, 2)
    assert choose_keeper([new, old]) == 1
    protected = FileFacts("/ref/p.jpg", 1, 1, 1, 9, protected=True)
    assert choose_keeper([big, protected]) == 1


def test_a_pair_counts_by_score_by_hash_with_a_floor_or_by_margin() -> None:
    from picmatch.duplicates import TIER_THRESHOLDS, Tier, accepted

    copy = TIER_THRESHOLDS[Tier.COPY]
    rows = [  # (score, hash distance, margin): accepted?
        (copy.strong, 64, -1.0, True),  # the score alone
        (copy.strong - 0.01, 64, -1.0, False),
        (copy.floor, copy.max_distance, -1.0, True),  # a close hash, with the floor
        (copy.floor - 0.01, 0, -1.0, False),  # a close hash alone never counts
        (copy.margin_floor, 64, copy.margin, True),  # standing out from the background
        (copy.margin_floor, 64, copy.margin - 0.01, False),
        (copy.margin_floor - 0.01, 64, 1.0, False),
    ]
    n = len(rows)
    pairs = Pairs(
        np.arange(n, dtype=np.int64),
        np.arange(n, dtype=np.int64) + n,
        np.array([r[0] for r in rows], np.float32),
        np.array([r[1] for r in rows], np.int64),
        np.zeros(n, bool),
        np.array([r[2] for r in rows], np.float32),
    )
    assert accepted(pairs, copy).tolist() == [r[3] for r in rows]


@pytest.mark.parametrize("ivf", [False, True])
def test_neighbours_past_the_exact_scan_still_find_every_planted_copy(
    ivf: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past 4096 images neighbours come from a PCA projection (and past EXACT_LIMIT from an
    IVF index); the pairs they give still carry exact scores."""
    from picmatch import dupe_pairs

    if ivf:
        monkeypatch.setattr(dupe_pairs, "EXACT_LIMIT", 1000)
    rng = np.random.default_rng(7)
    base = np.abs(rng.standard_normal((5000, 512))).astype(np.float32) ** 3
    copies = base[:300] + 0.3 * np.abs(rng.standard_normal((300, 512))).astype(np.float32)
    vectors = np.concatenate([base, copies])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    i, j, score, background = dupe_pairs.knn_pairs(vectors, 16, 0.0)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert all((5000 + c, c) in found for c in range(300))
    np.testing.assert_allclose(score, np.einsum("nd,nd->n", vectors[i], vectors[j]), atol=1e-5)
    assert np.all(background < 1.0)
