"""Answers that explain themselves: a plain-words reading of a score, and a similarity heat map.

Readings: score bands measured on the default model and pipeline (squash + sqrt features) over
826 stamps and wallpapers of the evaluation packages, each with a crop+flip and a colour-jitter
copy: half of the edited copies score >= 0.95, 92 % >= 0.80, 99 % >= 0.70, while the closest
other image of an original (often a recoloured variant of the same stamp) reaches 0.97 only in
5 % of cases; pairs of different images that score >= 0.65 are mostly of one category (79 %),
those below 0.50 mostly not (29 %). Other models score on other scales, so the words are given for
the default model only.

Heat map: the model's last feature map before pooling (7 x 7 x 1280 for EfficientNet-Lite0),
from a separate graph derived from the cached one, so the pooled embedding is untouched. For each
location of one image, the best cosine to any location of the other (after the same power
normalisation as the descriptor), upsampled onto the image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from picmatch.errors import ModelError
from picmatch.models.base import Embedder, RGBImage

FEATURE_MAP_OUTPUT = "_conv_head.relu6"  # head conv activation, models/efficientnet_graph.py
HEAT_HEIGHT = 256


@dataclass(frozen=True)
class Reading:
    min: float
    words: str


READINGS: tuple[Reading, ...] = (
    Reading(0.97, "almost certainly the same picture, or an edited copy"),
    Reading(0.85, "probably an edited copy or a close variant"),
    Reading(0.65, "same kind of picture"),
    Reading(0.50, "somewhat alike"),
    Reading(-1.0, "weak match"),
)
READINGS_MODEL = "efficientnet-lite0"


def reading(score: float) -> str:
    return next(r.words for r in READINGS if score >= r.min)


class FeatureMaps:
    """The pre-pooling feature map of EfficientNet-Lite0, from a graph with that extra output."""

    def __init__(self, embedder: Embedder) -> None:
        model_path = getattr(embedder, "model_path", None)
        if embedder.spec != READINGS_MODEL or not isinstance(model_path, Path):
            raise ModelError(
                f"similarity heat maps need the {READINGS_MODEL} model; this library uses "
                f"{embedder.spec}"
            )
        self.embedder = embedder
        self.power = float(getattr(embedder, "power", 1.0))
        self._session = _session(_feature_graph(model_path), getattr(embedder, "threads", 1))

    def feature_map(self, pixels: RGBImage) -> npt.NDArray[np.float32]:
        """The raw h x w x c feature map whose mean over locations is the pooled descriptor."""
        from picmatch.images.fit import fit_to_input

        batch = fit_to_input(pixels, self.embedder.preprocess)[None]
        try:
            (maps,) = self._session.run([FEATURE_MAP_OUTPUT], {"pixels": batch})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"the feature-map graph failed to run: {exc}") from exc
        return np.ascontiguousarray(np.transpose(np.asarray(maps, np.float32)[0], (1, 2, 0)))

    def local_features(self, pixels: RGBImage) -> npt.NDArray[np.float32]:
        """h x w x c unit vectors, one per location, power-normalised like the descriptor."""
        raw = self.feature_map(pixels)
        local = np.sign(raw) * np.abs(raw) ** self.power
        norm = np.linalg.norm(local, axis=-1, keepdims=True)
        out: npt.NDArray[np.float32] = (local / np.maximum(norm, 1e-12)).astype(np.float32)
        return out


def agreement(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> tuple[Any, Any]:
    """For each location of `a` its best cosine in `b`, and the other way round (h x w each)."""
    ha, wa, c = a.shape
    hb, wb, _ = b.shape
    cos = a.reshape(-1, c) @ b.reshape(-1, c).T
    return cos.max(axis=1).reshape(ha, wa), cos.max(axis=0).reshape(hb, wb)


def heat_map_png(
    maps: FeatureMaps, image_a: RGBImage, image_b: RGBImage, *, height: int = HEAT_HEIGHT
) -> bytes:
    """Both images side by side, each overlaid with where it agrees most with the other."""
    heat_a, heat_b = agreement(maps.local_features(image_a), maps.local_features(image_b))
    low = float(min(heat_a.min(), heat_b.min()))
    high = float(max(heat_a.max(), heat_b.max()))
    panels = [
        _overlay(img, heat, low, high, height)
        for img, heat in ((image_a, heat_a), (image_b, heat_b))
    ]
    gap = 8
    out = Image.new("RGB", (panels[0].width + gap + panels[1].width, height), (24, 27, 34))
    out.paste(panels[0], (0, 0))
    out.paste(panels[1], (panels[0].width + gap, 0))
    buffer = io.BytesIO()
    out.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _overlay(pixels: RGBImage, heat: Any, low: float, high: float, height: int) -> Image.Image:
    image = Image.fromarray(pixels)
    width = max(1, round(image.width * height / image.height))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    scaled = (heat - low) / max(high - low, 1e-6)
    small = Image.fromarray((scaled * 255).astype(np.uint8))
    level = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255
    ramp = np.stack(
        [np.clip(3 * level, 0, 1), np.clip(3 * level - 1, 0, 1), np.clip(3 * level - 2, 0, 1)],
        axis=-1,
    )  # black -> red -> yellow -> white
    base = np.asarray(image, np.float32) / 255
    mixed = base * (0.35 + 0.65 * level[..., None]) * 0.6 + ramp * 0.4
    return Image.fromarray((np.clip(mixed, 0, 1) * 255).astype(np.uint8))


def _feature_graph(model_path: Path) -> Path:
    """The cached graph plus the feature map as an output, cached beside it."""
    import onnx

    from picmatch._sys import atomic_save

    target = model_path.with_name(model_path.stem + "-featuremap.onnx")
    if target.is_file():
        return target
    model = onnx.load(str(model_path))
    if not any(FEATURE_MAP_OUTPUT in node.output for node in model.graph.node):
        raise ModelError(f"{model_path} has no {FEATURE_MAP_OUTPUT} tensor to explain with")
    value = onnx.helper.make_tensor_value_info(
        FEATURE_MAP_OUTPUT, onnx.TensorProto.FLOAT, ["N", 1280, 7, 7]
    )
    model.graph.output.append(value)
    try:
        atomic_save(target, lambda tmp: onnx.save(model, tmp))
    except OSError as exc:
        raise ModelError(
            f"cannot write {target}: {exc}; make the model cache writable or choose another one"
        ) from exc
    return target


def _session(path: Path, threads: int) -> Any:
    from picmatch.models.onnx_runtime import open_session

    return open_session(path, threads)
