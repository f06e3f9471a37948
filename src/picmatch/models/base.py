"""The `Embedder` contract: pixels (or text) in, L2-normalised float32 vectors out.

Every family (efficientnet.py, clip.py, onnx_generic.py) implements it and passes
tests/contract/test_embedder_contract.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from picmatch.images.fit import Preprocess, ResizeMode, RGBImage

FloatArray = npt.NDArray[np.float32]

__all__ = [
    "Embedder",
    "FlipMode",
    "FloatArray",
    "Modality",
    "Preprocess",
    "RGBImage",
    "ResizeMode",
    "l2_normalize",
    "power_normalize",
]


class Modality(StrEnum):
    IMAGE = "image"
    TEXT = "text"


class FlipMode(StrEnum):
    """Whether a descriptor also looks at the mirrored image (costs a second model run)."""

    NONE = "none"  # the image as it is
    MEAN = "mean"  # the sum of the image's and its mirror's embeddings: mirror-invariant


@runtime_checkable
class Embedder(Protocol):
    """A model that maps images (and possibly text) into one vector space."""

    @property
    def spec(self) -> str:
        """The spec string that names this model, e.g. ``efficientnet-lite0``."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def modalities(self) -> frozenset[Modality]: ...

    @property
    def preprocess(self) -> Preprocess: ...

    @property
    def batch_size(self) -> int:
        """Images per model call: what the indexer batches by."""
        ...

    def embed_images(self, images: Sequence[RGBImage]) -> FloatArray:
        """Embed RGB uint8 images (any size; resized per `preprocess`). Rows are L2-normalised."""
        ...

    def embed_text(self, texts: Sequence[str]) -> FloatArray:
        """Embed text queries; raises `ModelError` where the model has no text tower."""
        ...


def l2_normalize(x: FloatArray) -> FloatArray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: FloatArray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def power_normalize(x: FloatArray, power: float) -> FloatArray:
    """Signed power normalisation, ``sign(x) * |x| ** power``, then L2 (``power`` 1: L2 only).

    A power below 1 damps the few dominant feature channels ("burstiness"), so similarity
    rests on more of the descriptor. Scale-invariant: it may follow an earlier L2 step.
    """
    if power != 1.0:
        x = (np.sign(x) * np.abs(x) ** power).astype(np.float32)
    return l2_normalize(x)
