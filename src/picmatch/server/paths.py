"""Which files the server may read and which folders it may index. Symlinks are resolved first."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from picmatch.server.http_errors import BadRequestError, ForbiddenPathError, NotFoundError


def real_roots(roots: Iterable[Path]) -> list[Path]:
    """The roots that exist, with every symlink resolved."""
    found = []
    for root in roots:
        try:
            found.append(root.resolve(strict=True))
        except (OSError, RuntimeError):
            continue
    return found


def servable_file(path: str, roots: Iterable[Path]) -> Path | None:
    """The real path of `path` if it is an existing file inside one of `roots`, else None.

    Resolving first means `..` components and symlinks that lead out of the roots are refused.
    """
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_file():
        return None
    return real if any(real.is_relative_to(root) for root in real_roots(roots)) else None


def indexable_folder(path_text: str, allowed: Iterable[Path]) -> Path:
    """The real path of a folder or file the API may index; raises with what to do otherwise."""
    path = Path(path_text)
    if not path.is_absolute():
        raise BadRequestError(f"give an absolute path, not {path_text!r}")
    allowed_real = real_roots(allowed)
    if not allowed_real:
        raise ForbiddenPathError(
            "this server may not index any folder; restart it with --allowed-root FOLDER"
        )
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in allowed_real):
        names = ", ".join(str(r) for r in allowed_real)
        raise ForbiddenPathError(
            f"{path_text} is outside the folders this server may index ({names}); "
            "restart it with --allowed-root to allow another folder"
        )
    if not real.exists():
        raise NotFoundError(f"{path_text} does not exist; check the path")
    return real
