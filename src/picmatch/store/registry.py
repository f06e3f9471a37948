"""One factory from a store URL to a `VectorStore`. Backends are imported only when chosen."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from picmatch.errors import ConfigError
from picmatch.store.base import VectorStore

SCHEMES = ("sqlite",)


def open_store(url: str | Path) -> VectorStore:
    """Open the store named by `url`: ``sqlite:///abs/folder``, or a plain folder path."""
    text = str(url)
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and text[1:3] in (":\\", ":/")):
        scheme, location = "sqlite", text.removeprefix("file://")
    else:
        location = parsed.netloc + parsed.path
    if scheme == "sqlite":
        from picmatch.store.sqlite import SqliteStore

        if not location:
            raise ConfigError("a sqlite store URL needs a folder: sqlite:///path/to/folder")
        return SqliteStore(Path(location).expanduser())
    raise ConfigError(
        f"unknown store URL scheme {scheme!r} in {text!r}; valid schemes: {', '.join(SCHEMES)}"
    )
