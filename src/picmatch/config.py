"""Settings, built at the edges: defaults < config file < PICMATCH_* environment < CLI flags.

Only this module reads files and environment variables. Library classes take plain arguments.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picmatch.errors import ConfigError

DEFAULT_MODEL = "efficientnet-lite0"
DEFAULT_MAX_PIXELS = 178_956_970
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 60  # seconds: a 50 MB upload at 1 MB/s still fits


def default_library_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("picmatch")) / "library"


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("picmatch"))


def default_config_file() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("picmatch")) / "config.toml"


@dataclass(frozen=True)
class Settings:
    library: Path = field(default_factory=default_library_dir)
    model: str | None = None  # None: the library's own (a new library: DEFAULT_MODEL)
    store: str | None = None  # store URL; None = sqlite inside the library folder
    store_token: str | None = None  # credentials of a networked store (Milvus: user:password)
    cache_dir: Path = field(default_factory=default_cache_dir)
    workers: int | None = None  # decode processes; None = one per CPU
    batch_size: int | None = None  # None = the model's best batch for this CPU
    max_pixels: int = DEFAULT_MAX_PIXELS
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    allowed_roots: tuple[Path, ...] = ()  # folders the HTTP API may index
    allowed_hosts: tuple[str, ...] = ()  # Host header names served besides the bound ones; "*": any
    body_timeout: int = DEFAULT_BODY_TIMEOUT  # seconds a request body may take to arrive
    max_connections: int | None = None  # open HTTP connections; None = sized from the file limit


_ENV = {
    "library": "PICMATCH_LIBRARY",
    "model": "PICMATCH_MODEL",
    "store": "PICMATCH_STORE",
    "store_token": "PICMATCH_STORE_TOKEN",
    "cache_dir": "PICMATCH_CACHE_DIR",
    "workers": "PICMATCH_WORKERS",
    "batch_size": "PICMATCH_BATCH_SIZE",
    "max_pixels": "PICMATCH_MAX_PIXELS",
    "host": "PICMATCH_HOST",
    "port": "PICMATCH_PORT",
    "token": "PICMATCH_TOKEN",
    "max_upload_bytes": "PICMATCH_MAX_UPLOAD_BYTES",
    "allowed_roots": "PICMATCH_ALLOWED_ROOTS",
    "allowed_hosts": "PICMATCH_ALLOWED_HOSTS",
    "body_timeout": "PICMATCH_BODY_TIMEOUT",
    "max_connections": "PICMATCH_MAX_CONNECTIONS",
}


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge the sources in order of precedence; `overrides` (CLI flags) win, None means unset."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or Path(env.get("PICMATCH_CONFIG", "") or default_config_file())
    values.update(_read_config_file(path))
    values.update({k: env[v] for k, v in _ENV.items() if env.get(v)})
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return _build(values)


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
    section = data.get("picmatch", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a [picmatch] table")
    return dict(section)


def _build(values: dict[str, Any]) -> Settings:
    known = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}; valid: {', '.join(known)}")
    return Settings(**{name: _convert(name, raw) for name, raw in values.items()})


def _convert(name: str, raw: Any) -> Any:
    try:
        if name in ("library", "cache_dir"):
            return Path(str(raw)).expanduser().absolute()
        if name in (
            "workers", "batch_size", "max_pixels", "port", "max_upload_bytes", "body_timeout",
            "max_connections",
        ):  # fmt: skip
            value = int(raw)
            if value < 1:
                raise ValueError("must be at least 1")
            return value
        if name == "allowed_roots":
            items = raw.split(os.pathsep) if isinstance(raw, str) else list(raw)
            return tuple(Path(str(p)).expanduser().absolute() for p in items if str(p))
        if name == "allowed_hosts":
            names = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(n).strip().lower() for n in names if str(n).strip())
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value {raw!r} for setting {name!r}: {exc}") from exc


@dataclass(frozen=True)
class HubSettings:
    """Where models named by a hub repository come from (the Hugging Face hub's own variables)."""

    endpoint: str = "https://huggingface.co"  # HF_ENDPOINT: a mirror, or a local test server
    offline: bool = False  # HF_HUB_OFFLINE: use the cache only, never the network
    token: str | None = None  # HF_TOKEN: for gated or private repositories


def hub_settings(environ: Mapping[str, str] | None = None) -> HubSettings:
    """The hub settings from ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN``."""
    env = os.environ if environ is None else environ
    endpoint = (env.get("HF_ENDPOINT") or HubSettings.endpoint).rstrip("/")
    offline = env.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return HubSettings(endpoint, offline, env.get("HF_TOKEN") or None)
