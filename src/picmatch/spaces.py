"""A library's vector spaces: one per model, side by side, over the same files.

The manifest lists them in ``spaces`` (``[{"model": SPEC, "params": {...}}, ...]``); the first
is the library's default, and ``model`` / ``params`` keep naming it for older readers. Each
space has its own vectors in the store; the roots, the scan and the file bookkeeping are shared.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picmatch import __version__
from picmatch.errors import ConfigError, ModelError
from picmatch.models.base import Embedder, Modality
from picmatch.models.hub import DownloadProgress


@dataclass(frozen=True)
class Space:
    model: str  # the model spec, e.g. ``clip:immich-app/ViT-B-32__openai``
    params: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The store's name of this space."""
        return space_name(self.model)


def space_name(model_spec: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", model_spec.lower()).strip("_")[:64] or "default"


def spaces_of(manifest: Mapping[str, Any]) -> list[Space]:
    """The spaces a manifest lists, default first (a library from before spaces has one)."""
    listed = manifest.get("spaces")
    if not listed:
        return [Space(str(manifest["model"]), dict(manifest.get("params", {})))]
    return [Space(str(s["model"]), dict(s.get("params", {}))) for s in listed]


def set_spaces(manifest: dict[str, Any], spaces: list[Space]) -> None:
    manifest["spaces"] = [{"model": s.model, "params": dict(s.params)} for s in spaces]
    manifest["model"], manifest["params"] = spaces[0].model, dict(spaces[0].params)


def text_capable(spec: str) -> bool:
    """Whether the model named by `spec` has a text tower (known without loading it)."""
    from picmatch.models.registry import modalities_of

    return Modality.TEXT in modalities_of(spec)


class Embedders:
    """One embedder per space, loaded on first use; a model this version lacks is a clear error."""

    def __init__(self, cache_dir: Path, download_progress: DownloadProgress | None = None) -> None:
        self.cache_dir = cache_dir
        self.download_progress = download_progress
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def get(self, space: Space, others: list[Space]) -> Embedder:
        from picmatch.models.registry import is_known, load_embedder

        with self._lock:
            if space.name not in self._loaded:
                if not is_known(space.model):
                    usable = [s.model for s in others if is_known(s.model)]
                    hint = f" or use another of its models: --model {usable[0]}" if usable else ""
                    raise ModelError(
                        f"this library uses the model {space.model!r}, which picmatch "
                        f"{__version__} does not have: upgrade picmatch (pip install -U "
                        f"picmatch){hint}"
                    )
                options: dict[str, Any] = dict(space.params)
                self._loaded[space.name] = load_embedder(
                    space.model,
                    cache_dir=self.cache_dir / "models",
                    download_progress=self.download_progress,
                    **options,
                )
            return self._loaded[space.name]


def pick(spaces: list[Space], model: str | None, folder: Path) -> Space:
    """The space of `model` (default: the library's first); ConfigError naming the others."""
    if model is None:
        return spaces[0]
    for space in spaces:
        if space.model == model.strip():
            return space
    raise ConfigError(
        f"the library in {folder} has no vectors of {model}; its models are "
        f"{', '.join(s.model for s in spaces)}. Add this one with: picmatch index FOLDER "
        f"--model {model} --library {folder}"
    )


def text_error(space: Space, spaces: list[Space]) -> ConfigError:
    able = [s.model for s in spaces if text_capable(s.model)]
    if able:
        return ConfigError(
            f"{space.model} is an image-only model and cannot answer text queries; this "
            f"library's models that can: {', '.join(able)} (use --model {able[0]})"
        )
    return ConfigError(
        f"{space.model} is an image-only model and cannot answer text queries, and this library "
        "has no text model: add one with picmatch index FOLDER --model "
        "clip:immich-app/ViT-B-32__openai"
    )
