"""What every ONNX family shares: the model cache dir, ONNX Runtime sessions, batched runs.

Model families (efficientnet.py, clip.py, onnx_generic.py) keep only what is their own: where
their graphs come from and how their inputs and outputs look. (immich's machine-learning
service keeps its ONNX Runtime session in ``sessions/ort.py`` apart from its models the same way.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from picmatch.errors import ModelError
from picmatch.images.fit import Preprocess, RGBImage, model_input
from picmatch.models.base import FloatArray

if TYPE_CHECKING:
    import onnxruntime

Batch = npt.NDArray[Any]


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("picmatch")) / "models"


def open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    """A CPU ONNX Runtime session with full graph optimisation and `threads` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle ORT threads spin by default, stealing the CPU the decode workers need while indexing.
    # Measured here (2 cores, 120 photos of 8-12 MP, 2 decode workers): 24.5 images/s spinning,
    # 33.8 without; a lone 224x224 query costs ~1-2 ms more (9.4-11.1 vs 11.7-14.5 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_session(path: Path, threads: int, what: str) -> onnxruntime.InferenceSession:
    """`open_session`, with any ONNX Runtime failure as a `ModelError` naming `what`."""
    try:
        return open_session(path, threads)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(
            f"ONNX Runtime cannot load {what} ({path}): {exc}; if the file is damaged, "
            "delete it (picmatch models --drop SPEC) and run again to fetch it anew"
        ) from exc


def fixed_batch(session: onnxruntime.InferenceSession) -> int | None:
    """The batch size a graph was exported with, or None where the batch axis is dynamic."""
    first = session.get_inputs()[0].shape[0] if session.get_inputs()[0].shape else None
    return first if isinstance(first, int) and first > 0 else None


def run_batches(
    run: Callable[[Batch], Batch], inputs: Batch, batch_size: int, width: int, what: str
) -> FloatArray:
    """`run` over `inputs` in chunks of `batch_size`; rows of `width` floats, concatenated."""
    chunks = [np.zeros((0, width), np.float32)]
    for start in range(0, len(inputs), batch_size):
        try:
            result = run(inputs[start : start + batch_size])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{what} failed to run: {exc}") from exc
        result = np.asarray(result, dtype=np.float32).reshape(len(result), -1)
        if result.shape[1] != width:
            raise ModelError(f"{what} returned vectors of {result.shape[1]} values, not {width}")
        chunks.append(result)
    return np.concatenate(chunks)


def pixels_batch(images: Sequence[RGBImage], preprocess: Preprocess) -> npt.NDArray[np.uint8]:
    """N x S x S x 3 uint8: each image fitted to the model's input (once; see images/fit.py)."""
    try:
        fitted = [model_input(image, preprocess) for image in images]
    except ValueError as exc:
        raise ModelError(str(exc)) from exc
    if not fitted:
        return np.zeros((0, preprocess.size, preprocess.size, 3), np.uint8)
    return np.stack(fitted)


def normalized_nchw(pixels: npt.NDArray[np.uint8], preprocess: Preprocess) -> FloatArray:
    """uint8 NHWC -> float32 NCHW, ``(x / 255 - mean) / std`` per channel."""
    mean = np.asarray(preprocess.mean, np.float32)
    std = np.asarray(preprocess.std, np.float32)
    x = (pixels.astype(np.float32) / 255.0 - mean) / std
    out: FloatArray = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return out
