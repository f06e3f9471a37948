"""The `Embedder` contract: pixels (or text) in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
RGBImage = npt.NDArray[np.uint8]  # H x W x 3, uint8


class Modality(StrEnum):
    IMAGE = "image"
    TEXT = "text"


class ResizeMode(StrEnum):
    """How an image of any aspect ratio becomes the model's square input."""

    SQUASH = "squash"  # resize both sides to the input size, ignoring the aspect ratio
    CENTER_CROP = "center_crop"  # resize the short side, then crop the centre
    PAD = "pad"  # resize the long side, pad the rest


class FlipMode(StrEnum):
    """Whether a descriptor also looks at the mirrored image (costs a second model run)."""

    NONE = "none"  # the image as it is
    MEAN = "mean"  # the sum of the image's and its mirror's embeddings: mirror-invariant


@dataclass(frozen=True)
class Preprocess:
    """Facts about the input an embedder expects; the decoder and the embedder share them."""

    size: int  # square input side in pixels
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: ResizeMode = ResizeMode.CENTER_CROP


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
