"""One factory from a spec string to an `Embedder`. Model modules are imported lazily."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from picmatch.config import HubSettings
from picmatch.errors import ConfigError
from picmatch.models.base import Embedder, Modality
from picmatch.models.hub import DownloadProgress

DEFAULT_SPEC = "efficientnet-lite0"


def _efficientnet_lite0(spec: str, cache_dir: Path | None, **options: Any) -> Embedder:
    from picmatch.models.efficientnet import EfficientNetLite0

    return EfficientNetLite0(cache_dir=cache_dir, **options)


def _clip(location: str, cache_dir: Path | None, **options: Any) -> Embedder:
    from picmatch.models.clip import ClipEmbedder

    return ClipEmbedder(location, cache_dir=cache_dir or _default_cache(), **options)


def _onnx(location: str, cache_dir: Path | None, **options: Any) -> Embedder:
    from picmatch.models.onnx_generic import OnnxImageEmbedder

    return OnnxImageEmbedder(location, cache_dir=cache_dir or _default_cache(), **options)


def _default_cache() -> Path:
    from picmatch.models.onnx_runtime import default_cache_dir

    return default_cache_dir()


# Exact spec names, and schemes (``clip:LOCATION``) whose factory takes the location.
_NAMED: dict[str, Callable[..., Embedder]] = {
    "efficientnet-lite0": _efficientnet_lite0,
}
_SCHEMES: dict[str, Callable[..., Embedder]] = {
    "clip": _clip,
    "onnx": _onnx,
}
_SCHEME_OPTIONS = frozenset({"threads", "batch_size"})

_OPTIONS = frozenset({"threads", "batch_size", "resize", "power", "flip", "checkpoint"})
_PIPELINE_OPTIONS = frozenset({"resize", "power", "flip"})  # the ones that change the vectors

# Pipeline parameters recorded with a new library's vector space. They change the vectors, so
# a library keeps the ones it was built with even after a default here changes; an option a
# library did not record falls back to the embedder's own default (the first libraries' one).
# Chosen with benchmarks/quality.py (issue 3). Squash keeps the whole frame and undoes aspect
# changes (a centre crop drops 44 % of a 16:9 photo); the square root of the pooled features
# (power 0.5) damps dominant channels at no cost. Together, against the first pipeline (centre
# crop, plain L2) on the public set: µAP 0.965 -> 0.989, recall at 1 % false positives 0.988 ->
# 0.992, category P@10 0.608 -> 0.616. Mirror-averaging (flip=mean) gained nothing there (the
# features are already near mirror-invariant, cosine >= 0.92) for twice the model time.
_DEFAULT_PARAMS: dict[str, dict[str, str]] = {
    "efficientnet-lite0": {"resize": "squash", "power": "0.5"},
}


def valid_specs() -> list[str]:
    return [*sorted(_NAMED), *(f"{scheme}:REPO_OR_PATH" for scheme in sorted(_SCHEMES))]


def split_spec(spec: str) -> tuple[str, str] | None:
    """(scheme, location) of a scheme spec such as ``clip:immich-app/ViT-B-32__openai``."""
    scheme, sep, location = spec.strip().partition(":")
    if not sep or scheme not in _SCHEMES:
        return None
    return scheme, location.strip()


def is_known(spec: str) -> bool:
    """Whether this version of picmatch can build the model named by `spec`."""
    return spec.strip() in _NAMED or split_spec(spec) is not None


def default_params(spec: str) -> dict[str, str]:
    """The pipeline parameters a new library of model `spec` records and embeds with."""
    return dict(_DEFAULT_PARAMS.get(spec.strip(), {}))


def check_params(spec: str, params: Mapping[str, str]) -> None:
    """Raise `ConfigError` unless every key of `params` is a pipeline option of a model."""
    unknown = sorted(set(params) - _PIPELINE_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown pipeline parameter(s) {', '.join(unknown)} for {spec}: "
            f"valid ones are {', '.join(sorted(_PIPELINE_OPTIONS))}"
        )


def load_embedder(
    spec: str,
    *,
    cache_dir: Path | None = None,
    hub: HubSettings | None = None,
    download_progress: DownloadProgress | None = None,
    **options: Any,
) -> Embedder:
    """Build the embedder named by `spec`, e.g. ``load_embedder("efficientnet-lite0")`` or
    ``load_embedder("clip:immich-app/ViT-B-32__openai")`` (downloaded once into `cache_dir`)."""
    scheme = split_spec(spec)
    if scheme is None:
        factory = _NAMED.get(spec.strip())
        if factory is None:
            raise ConfigError(
                f"unknown model spec {spec!r}: valid specs are {', '.join(valid_specs())}"
            )
        _check_options(spec, options, _OPTIONS)
        return factory(spec.strip(), cache_dir, **options)
    name, location = scheme
    _check_options(spec, options, _SCHEME_OPTIONS)
    if not location:
        raise ConfigError(f"{spec!r} names no model: use {name}:OWNER/NAME or {name}:/path")
    return _SCHEMES[name](
        location, cache_dir, hub=hub, download_progress=download_progress, **options
    )


def _check_options(spec: str, options: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown model option(s) {', '.join(unknown)} for {spec}: "
            f"valid options are {', '.join(sorted(allowed))}"
        )


def modalities_of(spec: str) -> frozenset[Modality]:
    """What the model named by `spec` can embed, known from the spec alone (nothing loaded)."""
    scheme = split_spec(spec)
    if scheme is not None and scheme[0] == "clip":
        return frozenset({Modality.IMAGE, Modality.TEXT})
    return frozenset({Modality.IMAGE})
