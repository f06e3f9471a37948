"""HTTP API and web page over `Library`: `create_app(settings)` builds the app, `serve` runs it.

Importing this package is cheap; FastAPI and uvicorn load when one of the two is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app", "serve"]

if TYPE_CHECKING:
    from picmatch.server.app import create_app
    from picmatch.server.run import serve


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from picmatch.server.app import create_app

        return create_app
    if name == "serve":
        from picmatch.server.run import serve

        return serve
    raise AttributeError(f"module 'picmatch.server' has no attribute {name!r}")
