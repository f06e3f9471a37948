"""The meeting point of images and models: the input a model expects, and the step that makes it.

`Preprocess` is what an embedder tells the decoder about its input (square side, mean, std, how
to fit any aspect ratio into the square); `fit_to_input` turns RGB pixels into exactly that
input. Decoding (`decode.py`) and every embedder use this one function, so an image is resized
once, the same way on either side of a search: an embedder given pixels that already have its
input size uses them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, assert_never

import numpy as np
import numpy.typing as npt
from PIL import Image

RGBImage = npt.NDArray[np.uint8]  # H x W x 3, uint8
_Box = tuple[float, float, float, float]

_RESAMPLE: Final = Image.Resampling.LANCZOS
_REDUCING_GAP: Final = 3.0


class ResizeMode(StrEnum):
    """How an image of any aspect ratio becomes the model's square input."""

    SQUASH = "squash"  # resize both sides to the input size, ignoring the aspect ratio
    CENTER_CROP = "center_crop"  # resize the short side, then crop the centre
    PAD = "pad"  # resize the long side, pad the rest


@dataclass(frozen=True)
class Preprocess:
    """Facts about the input an embedder expects; the decoder and the embedder share them."""

    size: int  # square input side in pixels
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: ResizeMode = ResizeMode.CENTER_CROP


def fit_to_input(image: Image.Image | RGBImage, preprocess: Preprocess) -> RGBImage:
    """Resize `image` to the model's square input: `preprocess.size` x `preprocess.size` x 3 uint8.

    SQUASH ignores the aspect ratio; CENTER_CROP fills the square from the centre of the image;
    PAD fits the whole image and fills the rest with the model's mean colour (zero after
    normalisation, the most neutral input; mid grey for mean 0.5).
    """
    img = _as_rgb_image(image)
    size = preprocess.size
    match preprocess.resize:
        case ResizeMode.SQUASH:
            out = _resize(img, (size, size))
        case ResizeMode.CENTER_CROP:
            out = _resize(img, (size, size), box=_centre_square(img.size))
        case ResizeMode.PAD:
            out = _pad(img, size, _mean_colour(preprocess))
        case _:
            assert_never(preprocess.resize)
    return to_array(out)


def model_input(image: RGBImage, preprocess: Preprocess) -> RGBImage:
    """`image` as the model's input: used as it is when it already has the input size (decoded
    by `load_for_model`), fitted otherwise. Raises ValueError for anything but H x W x 3 uint8."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError("images must be H x W x 3 uint8 RGB arrays")
    if image.shape[2] != 3:
        raise ValueError(f"images must have 3 channels (RGB), got shape {image.shape}")
    if image.shape[:2] == (preprocess.size, preprocess.size):
        return image
    return fit_to_input(image, preprocess)


def to_array(img: Image.Image) -> RGBImage:
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _as_rgb_image(image: Image.Image | RGBImage) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 array, got {image.shape} {image.dtype}")
    return Image.fromarray(np.ascontiguousarray(image))


def _resize(img: Image.Image, size: tuple[int, int], box: _Box | None = None) -> Image.Image:
    return img.resize(size, _RESAMPLE, box=box, reducing_gap=_REDUCING_GAP)


def _centre_square(size: tuple[int, int]) -> _Box:
    width, height = size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _pad(img: Image.Image, size: int, colour: tuple[int, int, int]) -> Image.Image:
    width, height = img.size
    scale = size / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", (size, size), colour)
    canvas.paste(_resize(img, inner), ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return canvas


def _mean_colour(preprocess: Preprocess) -> tuple[int, int, int]:
    red, green, blue = (min(255, max(0, round(m * 255))) for m in preprocess.mean)
    return (red, green, blue)
