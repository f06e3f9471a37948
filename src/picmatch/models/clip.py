"""CLIP-family models: an image tower and a text tower in one vector space, so text finds images.

A model is a folder (local, or a hub repository downloaded into the cache) laid out like the
``immich-app/*`` ONNX exports of OpenCLIP models:

    config.json                  OpenCLIP model config: ``embed_dim``, ``text_cfg.context_length``
    visual/model.onnx            input ``image`` (float NCHW, normalised), first output: vector
    visual/preprocess_cfg.json   ``size``, ``mean``, ``std``, ``resize_mode`` (``shortest``, ...)
    textual/model.onnx           input ``text`` (int32 token ids [n, context]), first output
    textual/tokenizer.json       the CLIP BPE tokenizer (clip_tokenizer.py)
    textual/tokenizer_config.json  its ``pad_token``

Each tower's ONNX Runtime session opens on first use: indexing never loads the text tower.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from picmatch._sys import available_cpus
from picmatch.config import HubSettings
from picmatch.errors import ConfigError, ModelError
from picmatch.images.fit import Preprocess, ResizeMode, RGBImage
from picmatch.models.base import FloatArray, Modality, l2_normalize
from picmatch.models.hub import DownloadProgress, fetch_external_data, model_folder
from picmatch.models.onnx_runtime import (
    Batch,
    fixed_batch,
    load_session,
    normalized_nchw,
    pixels_batch,
    run_batches,
)

if TYPE_CHECKING:
    import onnxruntime

    from picmatch.models.clip_tokenizer import ClipTokenizer

CONFIG = "config.json"
VISUAL = ("visual/model.onnx", "visual/preprocess_cfg.json")
TEXTUAL = ("textual/model.onnx", "textual/tokenizer.json", "textual/tokenizer_config.json")
FILES = (CONFIG, *VISUAL, *TEXTUAL)
DEFAULT_BATCH_SIZE = 8

# OpenCLIP's resize modes (preprocess_cfg.json) and their picmatch names.
_RESIZE = {
    "shortest": ResizeMode.CENTER_CROP,
    "squash": ResizeMode.SQUASH,
    "longest": ResizeMode.PAD,
    **{mode.value: mode for mode in ResizeMode},
}


class ClipEmbedder:
    """``clip:LOCATION``: image and text queries in one space."""

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
        self._spec = f"clip:{location}"
        self.folder = model_folder(
            location, FILES, cache_dir=cache_dir, hub=hub, progress=download_progress
        )
        graphs = (VISUAL[0], TEXTUAL[0])
        fetch_external_data(
            location, self.folder, graphs, cache_dir=cache_dir, hub=hub, progress=download_progress
        )
        config = read_json(self.folder / CONFIG)
        self._dim = _positive(config.get("embed_dim"), self.folder / CONFIG, "embed_dim")
        text_cfg = config.get("text_cfg") or {}
        self.context_length = _positive(
            text_cfg.get("context_length", 77), self.folder / CONFIG, "context_length"
        )
        self._preprocess = preprocess_from(
            read_json(self.folder / VISUAL[1]), self.folder / VISUAL[1]
        )
        self.threads = threads or available_cpus()
        self._batch_size = batch_size or DEFAULT_BATCH_SIZE
        self._lock = threading.Lock()
        self._visual: onnxruntime.InferenceSession | None = None
        self._textual: onnxruntime.InferenceSession | None = None
        self._tokenizer: ClipTokenizer | None = None

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def modalities(self) -> frozenset[Modality]:
        return frozenset({Modality.IMAGE, Modality.TEXT})

    @property
    def preprocess(self) -> Preprocess:
        return self._preprocess

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def embed_images(self, images: Sequence[RGBImage]) -> FloatArray:
        session = self._session("visual")
        pixels = pixels_batch(images, self._preprocess)
        name = session.get_inputs()[0].name
        raw = session.get_inputs()[0].type == "tensor(uint8)"  # a graph that normalises itself

        def run(batch: Batch) -> Batch:
            feed = batch if raw else normalized_nchw(batch, self._preprocess)
            return np.asarray(session.run(None, {name: feed})[0])

        size = fixed_batch(session) or self._batch_size
        return l2_normalize(run_batches(run, pixels, size, self._dim, f"{self._spec} (visual)"))

    def embed_text(self, texts: Sequence[str]) -> FloatArray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ModelError("embed_text takes a list of strings")
        session = self._session("textual")
        tokens = self._text_tokenizer()(texts)
        inp = session.get_inputs()[0]
        dtype = np.int64 if inp.type == "tensor(int64)" else np.int32

        def run(batch: Batch) -> Batch:
            return np.asarray(session.run(None, {inp.name: batch.astype(dtype)})[0])

        size = fixed_batch(session) or self._batch_size
        return l2_normalize(run_batches(run, tokens, size, self._dim, f"{self._spec} (textual)"))

    def _session(self, tower: str) -> onnxruntime.InferenceSession:
        with self._lock:
            session = self._visual if tower == "visual" else self._textual
            if session is None:
                path = self.folder / tower / "model.onnx"
                session = load_session(path, self.threads, f"the {tower} tower of {self._spec}")
                if tower == "visual":
                    self._visual = session
                else:
                    self._textual = session
            return session

    def _text_tokenizer(self) -> ClipTokenizer:
        with self._lock:
            if self._tokenizer is None:
                from picmatch.models.clip_tokenizer import ClipTokenizer

                config = read_json(self.folder / TEXTUAL[2])
                pad = config.get("pad_token")
                pad = pad.get("content") if isinstance(pad, dict) else pad
                self._tokenizer = ClipTokenizer(
                    self.folder / TEXTUAL[1],
                    context_length=self.context_length,
                    pad_token=pad if isinstance(pad, str) else None,
                )
            return self._tokenizer


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object")
    return data


def preprocess_from(cfg: dict[str, Any], path: Path) -> Preprocess:
    """`Preprocess` from an OpenCLIP-style ``preprocess_cfg.json``."""
    size = cfg.get("size", 224)
    if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    mode = cfg.get("resize_mode", "shortest")  # OpenCLIP's default for older configs
    try:
        mean = tuple(float(v) for v in cfg.get("mean", ()))
        std = tuple(float(v) for v in cfg.get("std", ()))
    except (TypeError, ValueError):
        mean = std = ()
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ModelError(f"{path}: 'mean' and 'std' must be three numbers each (std above 0)")
    if mode not in _RESIZE:
        raise ModelError(f"{path}: unknown resize_mode {mode!r}; use one of {sorted(_RESIZE)}")
    return Preprocess(
        _positive(size, path, "size (a square input)"),
        (mean[0], mean[1], mean[2]),
        (std[0], std[1], std[2]),
        _RESIZE[mode],
    )


def _positive(value: object, path: Path, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelError(f"{path}: {name} must be a positive whole number, not {value!r}")
    return value
