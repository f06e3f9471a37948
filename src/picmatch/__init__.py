"""picmatch: self-hosted image similarity search.

    from picmatch import open_library
    lib = open_library("~/photos-library")
    lib.index(["~/Pictures"])
    for hit in lib.search("query.jpg", k=10):
        print(hit.score, hit.path)

Importing picmatch is cheap: models and vector stores load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Hit", "Library", "PicmatchError", "__version__", "open_library"]

if TYPE_CHECKING:
    from picmatch.errors import PicmatchError
    from picmatch.library import Library, open_library
    from picmatch.results import Hit


def __getattr__(name: str) -> Any:
    if name in ("Library", "open_library"):
        from picmatch import library

        return getattr(library, name)
    if name == "Hit":
        from picmatch.results import Hit

        return Hit
    if name == "PicmatchError":
        from picmatch.errors import PicmatchError

        return PicmatchError
    raise AttributeError(f"module 'picmatch' has no attribute {name!r}")
