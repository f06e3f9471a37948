"""One factory from a spec string to an `Embedder`. Model modules are imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from picmatch.errors import ConfigError
from picmatch.models.base import Embedder

DEFAULT_SPEC = "efficientnet-lite0"


def _efficientnet_lite0(spec: str, cache_dir: Path | None, **options: Any) -> Embedder:
    from picmatch.models.efficientnet import EfficientNetLite0

    return EfficientNetLite0(cache_dir=cache_dir, **options)


# Exact spec names. Scheme specs (``clip:...``, ``onnx:...``) will get their own table.
_NAMED: dict[str, Callable[..., Embedder]] = {
    "efficientnet-lite0": _efficientnet_lite0,
}

_OPTIONS = frozenset({"threads", "batch_size", "resize", "checkpoint"})

# Pipeline parameters recorded with a new library's vector space. They change the vectors, so
# a library keeps the ones it was built with even after a default here changes.
_DEFAULT_PARAMS: dict[str, dict[str, str]] = {
    "efficientnet-lite0": {"resize": "center_crop"},
}


def valid_specs() -> list[str]:
    return sorted(_NAMED)


def default_params(spec: str) -> dict[str, str]:
    """The pipeline parameters a new library of model `spec` records and embeds with."""
    return dict(_DEFAULT_PARAMS.get(spec.strip(), {}))


def load_embedder(spec: str, *, cache_dir: Path | None = None, **options: Any) -> Embedder:
    """Build the embedder named by `spec`, e.g. ``load_embedder("efficientnet-lite0")``."""
    factory = _NAMED.get(spec.strip())
    if factory is None:
        raise ConfigError(
            f"unknown model spec {spec!r}: valid specs are {', '.join(valid_specs())}"
        )
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown model option(s) {', '.join(unknown)} for {spec}: "
            f"valid options are {', '.join(sorted(_OPTIONS))}"
        )
    return factory(spec.strip(), cache_dir, **options)
