"""Retrieval metrics of the evaluation protocol (``shared/eval/PROTOCOL.md``).

Pure functions over plain sequences; scores are "higher = more similar" (for a Hamming
distance pass its negative). Every function raises ``ValueError`` on inputs that would
make the number meaningless (no positive queries, mismatched lengths, k < 1, NaN scores).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class OperatingPoint(NamedTuple):
    """A score threshold and the recall reached above it."""

    threshold: float
    recall: float


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _check_lengths(name_a: str, a: Sequence[object], name_b: str, b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} entries but {name_b} has {len(b)}")


def _scores(values: Sequence[float], what: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(array).any():
        raise ValueError(f"{what} contain NaN")
    return array


def recall_at_k(
    ranked_ids_per_query: Sequence[Sequence[Hashable]],
    truth_per_query: Sequence[Hashable | None],
    k: int,
) -> float:
    """Share of positive queries whose true id is among their first ``k`` results.

    ``truth_per_query[i]`` is the id query ``i`` should find, or ``None`` for a negative
    query (one whose original is not indexed); negative queries are left out.
    """
    _check_k(k)
    _check_lengths("ranked_ids_per_query", ranked_ids_per_query, "truth_per_query", truth_per_query)
    hits = [
        truth in list(ranked[:k])
        for ranked, truth in zip(ranked_ids_per_query, truth_per_query, strict=True)
        if truth is not None
    ]
    if not hits:
        raise ValueError("recall@k needs at least one positive query (a truth that is not None)")
    return float(np.mean(hits))


def micro_ap(pairs: Sequence[tuple[float, bool]], n_positive_queries: int) -> float:
    """Micro average precision (µAP) as in the DISC21 copy-detection benchmark.

    ``pairs`` pools the top results (top-10 in the protocol) of every query, positive and
    negative, as ``(score, is_correct)``. Pairs are sorted by score, descending, and
    µAP = Σ_n (R_n - R_(n-1)) P_n over the distinct score thresholds, i.e. (1 /
    ``n_positive_queries``) × the sum, over correct pairs, of the precision at that pair's
    rank. Tied scores enter together at one threshold: a correct pair is credited with the
    precision at the end of its tie group, so the result never depends on input order.
    """
    if n_positive_queries < 1:
        raise ValueError(f"n_positive_queries must be at least 1, got {n_positive_queries}")
    if not pairs:
        return 0.0
    scores = _scores([score for score, _ in pairs], "scores")
    correct = np.asarray([bool(ok) for _, ok in pairs], dtype=bool)
    if int(correct.sum()) > n_positive_queries:
        raise ValueError(
            f"{int(correct.sum())} correct pairs but only {n_positive_queries} positive queries"
        )
    order = np.argsort(-scores, kind="stable")
    scores, correct = scores[order], correct[order]
    new_group = np.concatenate(([True], scores[1:] != scores[:-1]))
    group_of = np.cumsum(new_group) - 1
    group_end = np.concatenate((np.flatnonzero(new_group)[1:], [len(scores)])) - 1
    precision_at_end = np.cumsum(correct)[group_end] / (group_end + 1)
    return float(precision_at_end[group_of][correct].sum() / n_positive_queries)


def recall_at_fpr(
    positive_top1: Sequence[tuple[float, bool]],
    negative_top1: Sequence[float],
    fpr: float = 0.01,
) -> OperatingPoint:
    """Recall at a fixed false-positive rate over negative queries.

    ``negative_top1`` holds the top-1 score of every negative query. The threshold is the
    lowest score such that at most ``floor(fpr × n_negative)`` of those scores are strictly
    above it (it is one of the negative scores; ``-inf`` when all may pass). ``positive_top1``
    holds ``(top-1 score, top-1 is correct)`` for every positive query; the recall is the
    share of them whose top-1 is correct and strictly above the threshold.
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must lie in [0, 1], got {fpr}")
    if not positive_top1 or not negative_top1:
        raise ValueError("recall_at_fpr needs at least one positive and one negative query")
    negatives = np.sort(_scores(negative_top1, "negative scores"))[::-1]
    allowed = math.floor(fpr * len(negatives) + 1e-9)
    threshold = float(negatives[allowed]) if allowed < len(negatives) else -math.inf
    scores = _scores([score for score, _ in positive_top1], "positive scores")
    correct = np.asarray([bool(ok) for _, ok in positive_top1], dtype=bool)
    return OperatingPoint(threshold, float(np.mean(correct & (scores > threshold))))


def precision_at_k(
    ranked_labels_per_query: Sequence[Sequence[Hashable]],
    query_labels: Sequence[Hashable],
    k: int,
) -> float:
    """Mean over queries of (results among the first ``k`` with the query's label) / ``k``.

    For leave-one-out category retrieval the ranked lists must already exclude the query
    itself. A list shorter than ``k`` still divides by ``k``.
    """
    _check_k(k)
    _check_lengths("ranked_labels_per_query", ranked_labels_per_query, "query_labels", query_labels)
    if not query_labels:
        raise ValueError("precision_at_k needs at least one query")
    shares = [
        sum(label == wanted for label in ranked[:k]) / k
        for ranked, wanted in zip(ranked_labels_per_query, query_labels, strict=True)
    ]
    return float(np.mean(shares))


def _average_precision(ranked: Sequence[Hashable], wanted: Hashable, n_relevant: int) -> float:
    relevant = np.asarray([label == wanted for label in ranked], dtype=bool)
    if n_relevant < 1:
        raise ValueError(f"a query with label {wanted!r} has no relevant item to find")
    ranks = np.flatnonzero(relevant) + 1
    return float(np.sum(np.arange(1, len(ranks) + 1) / ranks) / n_relevant)


def mean_average_precision(
    ranked_labels_per_query: Sequence[Sequence[Hashable]],
    query_labels: Sequence[Hashable],
    n_relevant_per_query: Sequence[int] | None = None,
) -> float:
    """Mean over queries of average precision: Σ over relevant ranks of precision@rank / R.

    R is ``n_relevant_per_query[i]`` (for leave-one-out: the size of the query's class
    minus one), or, when not given, the number of relevant items in the ranked list, which
    is right when the list ranks the whole collection. The ranked lists must exclude the
    query itself.
    """
    _check_lengths("ranked_labels_per_query", ranked_labels_per_query, "query_labels", query_labels)
    if not query_labels:
        raise ValueError("mean_average_precision needs at least one query")
    if n_relevant_per_query is None:
        n_relevant_per_query = [
            sum(label == wanted for label in ranked)
            for ranked, wanted in zip(ranked_labels_per_query, query_labels, strict=True)
        ]
    _check_lengths("query_labels", query_labels, "n_relevant_per_query", n_relevant_per_query)
    per_query = [
        _average_precision(ranked, wanted, n_relevant)
        for ranked, wanted, n_relevant in zip(
            ranked_labels_per_query, query_labels, n_relevant_per_query, strict=True
        )
    ]
    return float(np.mean(per_query))
