"""Any single-tower ONNX vision model: ``onnx:REPO_OR_PATH`` plus a small preprocessing file.

The location is a hub repository or a folder holding ``model.onnx`` and ``preprocess_cfg.json``,
or the path of a ``.onnx`` file with its preprocessing file beside it (``NAME.json``, else
``preprocess_cfg.json``). The preprocessing file is OpenCLIP's format:

    {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
     "resize_mode": "shortest", "output": "optional output name (default: the first)"}

The graph's first input takes float NCHW pixels, normalised with `mean` and `std` (or uint8
NHWC pixels, if that is its input type); the output is one vector per image ([n, d], or
[n, d, 1, 1]). Vectors are L2-normalised. Image queries only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from picmatch._sys import available_cpus
from picmatch.config import HubSettings
from picmatch.errors import ConfigError, ModelError
from picmatch.images.fit import Preprocess, RGBImage
from picmatch.models.base import FloatArray, Modality, l2_normalize
from picmatch.models.clip import preprocess_from, read_json
from picmatch.models.hub import (
    DownloadProgress,
    fetch_external_data,
    is_local,
    model_folder,
)
from picmatch.models.onnx_runtime import (
    Batch,
    fixed_batch,
    load_session,
    normalized_nchw,
    pixels_batch,
    run_batches,
)

if TYPE_CHECKING:
    pass

FILES = ("model.onnx", "preprocess_cfg.json")
DEFAULT_BATCH_SIZE = 8


class OnnxImageEmbedder:
    """``onnx:LOCATION``: an image-only embedder from any ONNX vision model."""

    def __init__(
        self,
        location: str,
        *,
        cache_dir: Path,
        threads: int | None = None,
        batch_size: int | None = None,
        hub: HubSettings | None = None,
        download_progress: DownloadProgress | None = None,
    ) -> None:
        if (threads is not None and threads < 1) or (batch_size is not None and batch_size < 1):
            raise ConfigError("threads and batch_size must be positive integers")
        self._spec = f"onnx:{location}"
        self.model_path, config_path = _files(location, cache_dir, hub, download_progress)
        config = read_json(config_path)
        self._preprocess = preprocess_from(config, config_path)
        self.threads = threads or available_cpus()
        self._session = load_session(self.model_path, self.threads, self._spec)
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = config.get("output", outputs[0])
        if self._output not in outputs:
            raise ModelError(f"{config_path}: the model has no output {self._output!r} ({outputs})")
        self._input = self._session.get_inputs()[0]
        self._batch_size = fixed_batch(self._session) or batch_size or DEFAULT_BATCH_SIZE
        self._lock = threading.Lock()
        side = self._preprocess.size
        try:  # the vector width, from one run on a blank image
            self._dim = int(self._forward(np.zeros((1, side, side, 3), np.uint8)).shape[1])
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{self._spec} failed to run on a {side}x{side} image: {exc}") from exc

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

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
        return l2_normalize(self._raw(images))

    def embed_text(self, texts: Sequence[str]) -> FloatArray:
        raise ModelError(
            f"{self._spec} is an image-only model; text queries need a CLIP model (clip:...)"
        )

    def _raw(self, images: Sequence[RGBImage]) -> FloatArray:
        pixels = pixels_batch(images, self._preprocess)
        with self._lock:
            return run_batches(self._forward, pixels, self._batch_size, self._dim, self._spec)

    def _forward(self, batch: Batch) -> Batch:
        """One model run: uint8 NHWC pixels in, one vector per image out."""
        feed = (
            batch
            if self._input.type == "tensor(uint8)"
            else normalized_nchw(batch, self._preprocess)
        )
        out = np.asarray(self._session.run([self._output], {self._input.name: feed})[0])
        if out.ndim > 2 and all(d == 1 for d in out.shape[2:]):
            out = out.reshape(out.shape[0], -1)
        if out.ndim != 2:
            raise ModelError(
                f"{self._spec}: output {self._output!r} has shape {out.shape}, not one vector "
                "per image; name a pooled output in the preprocessing file ('output')"
            )
        return out


def _files(
    location: str, cache_dir: Path, hub: HubSettings | None, progress: DownloadProgress | None
) -> tuple[Path, Path]:
    """(model file, preprocessing file) of a location."""
    path = Path(location).expanduser().absolute()
    if is_local(location) and path.suffix == ".onnx":
        if not path.is_file():
            raise ModelError(f"no ONNX model at {path}")
        beside = path.with_suffix(".json")
        config = beside if beside.is_file() else path.parent / FILES[1]
        if not config.is_file():
            raise ModelError(
                f"{path} needs a preprocessing file: {beside.name} or {FILES[1]} beside it "
                '(e.g. {"size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})'
            )
        return path, config
    folder = model_folder(location, FILES, cache_dir=cache_dir, hub=hub, progress=progress)
    fetch_external_data(
        location, folder, [FILES[0]], cache_dir=cache_dir, hub=hub, progress=progress
    )
    return folder / FILES[0], folder / FILES[1]
