"""One factory from a store URL to a `VectorStore`. Backends are imported only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from picmatch.errors import ConfigError
from picmatch.store.base import VectorStore


def _open_sqlite(url: str, location: str, token: str | None) -> VectorStore:
    from picmatch.store.sqlite import SqliteStore

    if not location:
        raise ConfigError("a sqlite store URL needs a folder: sqlite:///path/to/folder")
    return SqliteStore(Path(location).expanduser())


def _open_milvus(url: str, location: str, token: str | None) -> VectorStore:
    from picmatch.store.milvus import MilvusStore

    return MilvusStore(url, token)


# scheme -> factory(url, location, token); every scheme a user may write in --store
FACTORIES: dict[str, Callable[[str, str, str | None], VectorStore]] = {
    "sqlite": _open_sqlite,
    "milvus": _open_milvus,
    "milvus+http": _open_milvus,
    "milvus+https": _open_milvus,
}
SCHEMES = tuple(FACTORIES)


def open_store(url: str | Path, *, token: str | None = None) -> VectorStore:
    """Open the store named by `url`: ``sqlite:///abs/folder`` (or a plain folder path),
    ``milvus://host:19530[/database]`` or ``milvus+https://host[:port][/database]``; `token`
    holds a networked store's credentials."""
    text = str(url)
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and text[1:3] in (":\\", ":/")):
        scheme, location = "sqlite", text.removeprefix("file://")
    else:
        location = parsed.netloc + parsed.path
    if parsed.username or parsed.password:
        raise ConfigError(
            "put the store's credentials in PICMATCH_STORE_TOKEN (or store_token in the config "
            "file), not in the store URL, which library.json keeps in plain text"
        )
    factory = FACTORIES.get(scheme)
    if factory is None:
        raise ConfigError(
            f"unknown store URL scheme {scheme!r} in {text!r}; valid schemes: {', '.join(SCHEMES)}"
        )
    return factory(text, location, token)
