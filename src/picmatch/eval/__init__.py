"""Evaluation helpers: the protocol's image edits and its retrieval metrics.

See ``shared/eval/PROTOCOL.md``. Used by ``benchmarks/`` and by ``picmatch eval``.
"""

from picmatch.eval.metrics import (
    OperatingPoint,
    mean_average_precision,
    micro_ap,
    precision_at_k,
    recall_at_fpr,
    recall_at_k,
)
from picmatch.eval.transforms import EDIT_NAMES, TRANSFORMS, Edit, edit_rng

__all__ = [
    "EDIT_NAMES",
    "TRANSFORMS",
    "Edit",
    "OperatingPoint",
    "edit_rng",
    "mean_average_precision",
    "micro_ap",
    "precision_at_k",
    "recall_at_fpr",
    "recall_at_k",
]
