"""Retrieval metrics of the protocol against small hand-computed examples."""

from __future__ import annotations

import math

import pytest

from picmatch.eval.metrics import (
    mean_average_precision,
    micro_ap,
    precision_at_k,
    recall_at_fpr,
    recall_at_k,
)

# --- recall@k ---------------------------------------------------------------------------

RANKED = [["a", "b", "c"], ["x", "a", "b"], ["c", "b"], ["q", "r"]]
TRUTH = ["a", "a", "a", None]  # the last query is a negative one: left out


@pytest.mark.parametrize(("k", "expected"), [(1, 1 / 3), (2, 2 / 3), (3, 2 / 3), (10, 2 / 3)])
def test_recall_at_k(k: int, expected: float) -> None:
    assert recall_at_k(RANKED, TRUTH, k) == pytest.approx(expected)


def test_recall_at_k_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        recall_at_k([["a"]], [None], 1)
    with pytest.raises(ValueError, match="k must"):
        recall_at_k(RANKED, TRUTH, 0)
    with pytest.raises(ValueError, match="entries"):
        recall_at_k(RANKED, TRUTH[:2], 1)


# --- µAP ----------------------------------------------------------------------------------


def test_micro_ap_without_ties() -> None:
    # sorted: T F T F -> correct at rank 1 (P=1) and rank 3 (P=2/3); 3 positive queries
    pairs = [(0.7, True), (0.9, True), (0.6, False), (0.8, False)]
    assert micro_ap(pairs, 3) == pytest.approx((1 + 2 / 3) / 3)


def test_micro_ap_ties_enter_together_whatever_the_input_order() -> None:
    # 0.9 T -> P=1; tie group {0.5 T, 0.5 F} ends at rank 3 with 2 correct -> P=2/3;
    # 0.2 T -> P=3/4.  µAP = (1 + 2/3 + 3/4) / 3 = 29/36
    correct_first = [(0.9, True), (0.5, True), (0.5, False), (0.2, True)]
    wrong_first = [(0.9, True), (0.5, False), (0.5, True), (0.2, True)]
    assert micro_ap(correct_first, 3) == pytest.approx(29 / 36)
    assert micro_ap(wrong_first, 3) == pytest.approx(29 / 36)


def test_micro_ap_all_scores_equal_is_precision_times_recall() -> None:
    pairs = [(1.0, True), (1.0, False), (1.0, False), (1.0, True)]
    assert micro_ap(pairs, 4) == pytest.approx(0.5 * 0.5)


def test_micro_ap_perfect_and_empty() -> None:
    assert micro_ap([(3.0, True), (2.0, True), (1.0, False)], 2) == pytest.approx(1.0)
    assert micro_ap([], 5) == 0.0


def test_micro_ap_counts_missed_positives() -> None:
    # one correct pair at rank 1, but 4 positive queries: the other 3 found nothing
    assert micro_ap([(0.9, True), (0.1, False)], 4) == pytest.approx(0.25)


def test_micro_ap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="correct pairs"):
        micro_ap([(1.0, True), (0.5, True)], 1)
    with pytest.raises(ValueError, match="n_positive_queries"):
        micro_ap([(1.0, True)], 0)
    with pytest.raises(ValueError, match="NaN"):
        micro_ap([(math.nan, True)], 1)


# --- recall at a false-positive rate ------------------------------------------------------

POSITIVES = [(0.8, True), (0.5, True), (0.95, False), (0.6, True)]
NEGATIVES = [0.1, 0.9, 0.5, 0.3]


def test_recall_at_fpr_one_negative_may_pass() -> None:
    # 4 negatives, fpr 0.25 -> 1 may lie above; threshold = 2nd highest = 0.5.
    # Above it and correct: 0.8 and 0.6 (0.5 is not above, 0.95 is wrong) -> 2/4.
    threshold, recall = recall_at_fpr(POSITIVES, NEGATIVES, fpr=0.25)
    assert threshold == 0.5
    assert recall == pytest.approx(0.5)


def test_recall_at_fpr_no_negative_may_pass() -> None:
    # floor(0.01 * 4) = 0 -> threshold is the highest negative, 0.9: nothing correct above.
    assert recall_at_fpr(POSITIVES, NEGATIVES, fpr=0.01) == (0.9, 0.0)


def test_recall_at_fpr_ties_among_negatives() -> None:
    # floor(0.34 * 3) = 1; threshold 0.7: no negative is strictly above it (<= 1 allowed).
    threshold, recall = recall_at_fpr([(0.71, True), (0.7, True)], [0.7, 0.7, 0.2], fpr=0.34)
    assert threshold == 0.7
    assert recall == pytest.approx(0.5)


def test_recall_at_fpr_one_percent_of_a_hundred() -> None:
    negatives = [i / 100 for i in range(100)]
    threshold, recall = recall_at_fpr([(0.985, True), (0.99, True)], negatives, fpr=0.01)
    assert threshold == pytest.approx(0.98)
    assert recall == pytest.approx(1.0)


def test_recall_at_fpr_everything_allowed() -> None:
    assert recall_at_fpr([(-5.0, True), (0.0, False)], [1.0], fpr=1.0) == (-math.inf, 0.5)


def test_recall_at_fpr_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="fpr"):
        recall_at_fpr(POSITIVES, NEGATIVES, fpr=1.5)
    with pytest.raises(ValueError, match="negative"):
        recall_at_fpr(POSITIVES, [], fpr=0.01)


# --- category retrieval -------------------------------------------------------------------


def test_precision_at_k() -> None:
    ranked = [["cat", "dog", "cat"], ["dog", "dog", "cat"]]
    assert precision_at_k(ranked, ["cat", "dog"], 2) == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert precision_at_k(ranked, ["cat", "dog"], 3) == pytest.approx(2 / 3)
    assert precision_at_k([["cat"]], ["cat"], 2) == pytest.approx(0.5)  # short list


def test_mean_average_precision() -> None:
    ranked = [["cat", "dog", "cat", "dog"], ["cat", "dog", "dog"]]
    # cat: relevant at ranks 1, 3 -> (1 + 2/3) / 2 = 5/6; dog: ranks 2, 3 -> (1/2 + 2/3) / 2 = 7/12
    assert mean_average_precision(ranked, ["cat", "dog"]) == pytest.approx((5 / 6 + 7 / 12) / 2)


def test_mean_average_precision_with_unretrieved_relevant_items() -> None:
    # a third cat exists but was not returned: AP = (1 + 2/3) / 3
    ranked = [["cat", "dog", "cat", "dog"]]
    assert mean_average_precision(ranked, ["cat"], [3]) == pytest.approx(5 / 9)


def test_mean_average_precision_rejects_a_query_with_nothing_to_find() -> None:
    with pytest.raises(ValueError, match="no relevant"):
        mean_average_precision([["dog"]], ["cat"])
