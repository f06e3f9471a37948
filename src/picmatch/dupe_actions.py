"""Reversible duplicate actions: move files to a review folder, or hardlink byte-identical copies.

picmatch never deletes a file. Every action writes a manifest to `<library>/dupes-actions/`
first listing what it did, and `undo` replays it backwards. The library follows each action at
once: a moved file's record moves with it (its vector is kept, nothing is embedded again).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from picmatch._sys import atomic_write, display_path
from picmatch.errors import ConfigError, ImageDecodeError
from picmatch.images.scan import content_hash
from picmatch.indexer import record_id
from picmatch.store.base import Record, VectorStore, path_in_folder

ACTIONS_DIR = "dupes-actions"
FORMAT = 1


@dataclass
class ActionReport:
    manifest: str | None  # where the undo manifest is; None when nothing was done
    done: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def to_dict(self) -> dict[str, Any]:
        def shown(entry: dict[str, Any]) -> dict[str, Any]:
            return {k: display_path(v) if isinstance(v, str) else v for k, v in entry.items()}

        return {
            "manifest": self.manifest and display_path(self.manifest),
            "done": [shown(e) for e in self.done],
            "skipped": [{"path": display_path(p), "reason": r} for p, r in self.skipped],
        }


class DupeActions:
    """Moves, links and undo over one library's store space."""

    def __init__(self, store: VectorStore, space: str, library: Path, roots: Sequence[str]) -> None:
        self.store = store
        self.space = space
        self.folder = library / ACTIONS_DIR
        self.roots = tuple(roots)

    def review_folders(self) -> tuple[str, ...]:
        """Folders that hold files moved by actions not undone: duplicate scans skip them."""
        found = []
        for manifest in sorted(self.folder.glob("*.json")):
            data = _read(manifest)
            if data and not data.get("undone") and data.get("move_to"):
                found.append(str(data["move_to"]))
        return tuple(found)

    def move(self, paths: Sequence[str], move_to: str | os.PathLike[str]) -> ActionReport:
        """Move indexed files under `move_to`, keeping their path relative to their root."""
        target = Path(move_to).expanduser().absolute()
        report = ActionReport(None)
        entries: list[dict[str, Any]] = []
        for path in dict.fromkeys(paths):
            dst = target / self._relative(path)
            reason = self._move_file(path, str(dst))
            if reason:
                report.skipped.append((path, reason))
            else:
                entries.append({"kind": "move", "src": path, "dst": str(dst)})
        return self._record(report, entries, move_to=str(target))

    def link(self, pairs: Sequence[tuple[str, str]]) -> ActionReport:
        """Replace each (copy, keeper) copy by a hardlink to the keeper, if byte-identical."""
        report = ActionReport(None)
        entries: list[dict[str, Any]] = []
        for path, keeper in pairs:
            reason = _same_bytes_reason(path, keeper)
            if reason is None:
                mtime = os.stat(path).st_mtime_ns
                try:
                    _replace_with(path, lambda tmp, k=keeper: os.link(k, tmp))
                except OSError as exc:
                    reason = f"cannot hardlink: {exc.strerror or exc}"
                else:
                    self._refresh(path, path)
                    entry = {"kind": "link", "path": path, "target": keeper, "mtime_ns": mtime}
                    entries.append(entry)
            if reason:
                report.skipped.append((path, reason))
        return self._record(report, entries, move_to=None)

    def undo(self, manifest: str | os.PathLike[str]) -> ActionReport:
        path = Path(manifest).expanduser().absolute()
        data = _read(path)
        if data is None or data.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a picmatch dupes manifest")
        if data.get("undone"):
            raise ConfigError(f"{path} was already undone")
        report = ActionReport(str(path))
        for entry in reversed(data["actions"]):
            reason = self._undo_one(entry)
            if reason:
                report.skipped.append((entry.get("src") or entry["path"], reason))
            else:
                report.done.append(entry)
        data["undone"] = time.time()
        atomic_write(path, (json.dumps(data, indent=1) + "\n").encode())
        return report

    # internals

    def _relative(self, path: str) -> Path:
        for root in sorted(self.roots, key=len, reverse=True):
            if path_in_folder(path, root) and path != root:
                return Path(path).relative_to(root)
        return Path(path).relative_to(Path(path).anchor)

    def _move_file(self, src: str, dst: str) -> str | None:
        if not os.path.isfile(src):
            return "not found"
        if os.path.lexists(dst):
            return f"{dst} already exists"
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.move(src, dst)
        except OSError as exc:
            return f"cannot move: {exc.strerror or exc}"
        self._refresh(src, dst)
        return None

    def _undo_one(self, entry: dict[str, Any]) -> str | None:
        if entry["kind"] == "move":
            if os.path.lexists(entry["src"]):
                return f"a file is back at {entry['src']}; left {entry['dst']} where it is"
            return self._move_file(entry["dst"], entry["src"])
        path, target = entry["path"], entry["target"]
        if not (os.path.isfile(path) and os.path.isfile(target)):
            return "the file or its link target is gone"
        if not os.path.samefile(path, target):
            return "no longer a hardlink of its keeper; left as it is"
        _replace_with(path, lambda tmp: shutil.copyfile(target, tmp))
        os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))
        self._refresh(path, path)
        return None

    def _refresh(self, old: str, new: str) -> None:
        """Point the record of `old` at `new` (same vector), with the file's current stat."""
        found = self.store.get(self.space, [record_id(old)])
        if not found:
            return
        st = os.stat(new)
        payload = replace(found[0].payload, path=new, size=st.st_size, mtime_ns=st.st_mtime_ns)
        self.store.upsert(self.space, [Record(record_id(new), found[0].vector, payload)])
        if old != new:
            self.store.delete(self.space, [record_id(old)])

    def _record(
        self, report: ActionReport, entries: list[dict[str, Any]], *, move_to: str | None
    ) -> ActionReport:
        report.done = entries
        if not entries:
            return report
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        kind = entries[0]["kind"]
        manifest = self.folder / f"{stamp}-{kind}-{os.getpid()}-{time.monotonic_ns() % 10**6}.json"
        data = {"format": FORMAT, "created": time.time(), "move_to": move_to, "actions": entries}
        atomic_write(manifest, (json.dumps(data, indent=1) + "\n").encode())
        self.store.flush()
        report.manifest = str(manifest)
        return report


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("actions"), list) else None


def _same_bytes_reason(path: str, keeper: str) -> str | None:
    if path == keeper:
        return "is the keeper"
    try:
        if os.path.samefile(path, keeper):
            return "already a hardlink of the keeper"
        if content_hash(path) != content_hash(keeper):
            return "not byte-identical to the keeper (only exact duplicates are linked)"
    except (OSError, ImageDecodeError) as exc:
        return f"cannot read: {exc}"
    return None


def _replace_with(path: str, make: Any) -> None:
    """Create the new file beside `path` with `make(tmp)`, then atomically replace `path`."""
    folder = os.path.dirname(path)
    tmp = tempfile.mktemp(dir=folder, prefix=".picmatch-")
    try:
        make(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
