"""A local stand-in for the Hugging Face hub's file URLs, on 127.0.0.1 (set ``HF_ENDPOINT``).

``HEAD/GET /{repo}/resolve/{revision}/{path}`` answers like the hub: ``X-Repo-Commit``, and for
small files an ``ETag`` (git blob SHA-1) and the bytes; for large (here: ``.onnx``) files a 302
redirect to a CDN URL with ``X-Linked-Etag`` (SHA-256) and ``X-Linked-Size``. Files are served
with HTTP Range support. Faults on demand: `cut_after` (close the connection after N bytes of a
file), `corrupt` (serve other bytes than the hash says), `down` (refuse every request).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeHub:
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)  # repo -> path -> bytes
    commits: dict[str, str] = field(default_factory=dict)  # repo -> commit sha
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before a cut
    corrupt: set[str] = field(default_factory=set)
    down: bool = False
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, range)
    url: str = ""

    def add_folder(self, repo: str, folder: Path) -> None:
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        self.repos[repo] = files
        self.commits[repo] = hashlib.sha1(repo.encode() + b"".join(files.values())).hexdigest()

    def by_sha256(self, digest: str) -> tuple[str, bytes] | None:
        for files in self.repos.values():
            for path, data in files.items():
                if hashlib.sha256(data).hexdigest() == digest:
                    return path, data
        return None


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            hub.log.append((self.command, self.path, self.headers.get("Range", "")))
            if hub.down:
                self.connection.close()
                return
            if self.path.startswith("/cdn/"):
                found = hub.by_sha256(self.path.removeprefix("/cdn/"))
                if found is None:
                    self.send_error(404)
                    return
                self._send_file(*found, {}, body)
                return
            match = _RESOLVE.match(self.path)
            files = hub.repos.get(match["repo"]) if match else None
            if match is None or files is None or match["path"] not in files:
                self.send_error(404, "Entry not found")
                return
            repo, path = match["repo"], match["path"]
            if match["rev"] not in ("main", hub.commits[repo]):
                self.send_error(404, "Revision not found")
                return
            data = files[path]
            headers = {"X-Repo-Commit": hub.commits[repo]}
            if path.endswith(".onnx"):  # large files live in LFS, behind a CDN redirect
                digest = hashlib.sha256(data).hexdigest()
                self.send_response(302)
                self.send_header("Location", f"{hub.url}/cdn/{digest}")
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers["ETag"] = f'"{git_blob_sha1(data)}"'
            self._send_file(path, data, headers, body)

        def _send_file(self, path: str, data: bytes, headers: dict[str, str], body: bool) -> None:
            if path in hub.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if wanted and body:
                start = int(wanted[1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not body:
                return
            cut = hub.cut_after.pop(path, None)
            if cut is not None:  # send part of the file, then drop the connection
                self.wfile.write(data[start : start + cut])
                self.wfile.flush()
                self.connection.close()
                return
            self.wfile.write(data[start:])

    return Handler


@contextmanager
def serve_hub(hub: FakeHub) -> Iterator[FakeHub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
