"""Model files from a Hugging Face-style hub: downloaded once, resumable, hash-checked, cached.

URLs and headers are the hub's own (what ``huggingface_hub`` uses): a file is
``{endpoint}/{repo}/resolve/{revision}/{path}``. A HEAD request (redirects not followed, since a
large file redirects to a CDN) gives the commit the revision points to (``X-Repo-Commit``), the
file's hash and size: ``X-Linked-Etag`` / ``X-Linked-Size`` for large (LFS) files, whose etag is
the SHA-256 of the content, otherwise ``ETag`` / ``Content-Length``, whose etag is the git blob
SHA-1. Every file is fetched from the resolved commit, so one model never mixes two revisions.

Cache layout, under ``<cache>/hub/models--OWNER--NAME/``: ``snapshots/COMMIT/PATH`` (complete,
verified files), ``snapshots/COMMIT/PATH.incomplete`` (a download in progress; the next run
resumes it with an HTTP Range request) and ``refs/REVISION`` (the commit of a revision whose
files are all complete). With ``HF_HUB_OFFLINE`` set, or when the hub cannot be reached, a
complete cached snapshot is used; without one, the error says what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote, urljoin

from picmatch._sys import atomic_write
from picmatch.config import HubSettings, hub_settings
from picmatch.errors import ConfigError, ModelError

DownloadProgress = Callable[[str, int, int], None]  # (file, bytes done, bytes in all)

CHUNK = 1024 * 1024
TIMEOUT_S = 30.0
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_REVISION = re.compile(r"^[\w.-]+(/[\w.-]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_NETWORK_ERRORS = (
    urllib.error.URLError,
    socket.timeout,
    ConnectionError,
    http.client.HTTPException,
)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    commit: str
    etag: str  # sha256 hex (LFS) or git blob sha1 hex
    size: int
    url: str  # where to GET it (the CDN for large files)


@dataclass(frozen=True)
class CachedRepo:
    repo: str
    revisions: dict[str, str]  # revision -> commit
    size_bytes: int
    folder: Path


def parse_repo(text: str) -> tuple[str, str]:
    """``OWNER/NAME[@REVISION]`` -> (repo, revision); raises ConfigError for anything else."""
    repo, _, revision = text.strip().partition("@")
    revision = revision or "main"
    if not _REPO.match(repo) or not _REVISION.match(revision) or ".." in revision:
        raise ConfigError(
            f"{text!r} is not a hub repository: use OWNER/NAME or OWNER/NAME@REVISION, "
            "e.g. immich-app/ViT-B-32__openai"
        )
    return repo, revision


def repo_folder(cache_dir: Path, repo: str) -> Path:
    return cache_dir / "hub" / ("models--" + repo.replace("/", "--"))


def fetch(
    repo: str,
    files: Sequence[str],
    *,
    cache_dir: Path,
    revision: str = "main",
    hub: HubSettings | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """The local folder holding `files` of `repo` at `revision`, downloading what is missing."""
    hub = hub or hub_settings()
    folder = repo_folder(cache_dir, repo)
    if hub.offline:
        cached = cached_snapshot(folder, revision, files)
        if cached is None:
            raise ModelError(
                f"{repo} is not in the model cache ({folder}) and HF_HUB_OFFLINE is set: unset "
                "HF_HUB_OFFLINE and run again to download it, or copy the model folder here and "
                "name it by its path"
            )
        return cached
    try:
        remotes = [_head(hub, repo, revision, files[0])]
        commit = remotes[0].commit
        remotes += [_head(hub, repo, commit, path) for path in files[1:]]
    except _NETWORK_ERRORS as exc:
        cached = cached_snapshot(folder, revision, files)
        if cached is not None:
            return cached
        raise ModelError(
            f"cannot download {repo} from {hub.endpoint}: {_reason(exc)}. Connect to the network "
            "and run the command again (set HF_ENDPOINT to use a mirror); it is downloaded once "
            "and works offline afterwards"
        ) from None
    snapshot = folder / "snapshots" / commit
    for remote in remotes:
        _download(hub, repo, remote, snapshot / remote.path, progress)
    if revision != commit:
        atomic_write(folder / "refs" / revision, commit.encode("ascii"))
    return snapshot


def cached_snapshot(folder: Path, revision: str, files: Sequence[str]) -> Path | None:
    """The complete cached snapshot of `revision`, or None."""
    commit = revision if _COMMIT.match(revision) else None
    if commit is None:
        try:
            commit = (folder / "refs" / revision).read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not _COMMIT.match(commit):
            return None
    snapshot = folder / "snapshots" / commit
    return snapshot if all((snapshot / f).is_file() for f in files) else None


def cached_repos(cache_dir: Path) -> list[CachedRepo]:
    """Every repository in the cache, with its revisions and its size on disk."""
    out = []
    hub_dir = cache_dir / "hub"
    for folder in sorted(hub_dir.glob("models--*")) if hub_dir.is_dir() else []:
        repo = folder.name.removeprefix("models--").replace("--", "/", 1)
        refs = folder / "refs"
        revisions = {
            ref.name: ref.read_text("ascii").strip()
            for ref in (sorted(refs.iterdir()) if refs.is_dir() else [])
            if ref.is_file()
        }
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        out.append(CachedRepo(repo, revisions, size, folder))
    return out


def remove_repo(cache_dir: Path, repo: str) -> bool:
    folder = repo_folder(cache_dir, repo)
    if not folder.is_dir():
        return False
    shutil.rmtree(folder)
    return True


# HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _request(
    hub: HubSettings, url: str, method: str, headers: dict[str, str]
) -> urllib.request.Request:
    from picmatch import __version__

    all_headers = {"User-Agent": f"picmatch/{__version__}", "Accept-Encoding": "identity"}
    if hub.token and url.startswith(hub.endpoint):
        all_headers["Authorization"] = f"Bearer {hub.token}"
    return urllib.request.Request(url, method=method, headers=all_headers | headers)


def _file_url(hub: HubSettings, repo: str, revision: str, path: str) -> str:
    return f"{hub.endpoint}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


def _head(hub: HubSettings, repo: str, revision: str, path: str) -> RemoteFile:
    """The file's commit, hash, size and download URL, from a HEAD request."""
    url = _file_url(hub, repo, revision, path)
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(5):  # relative redirects stay on the hub (renamed repos); follow those
        try:
            response = opener.open(_request(hub, url, "HEAD", {}), timeout=TIMEOUT_S)
            headers, status = response.headers, response.status
            response.close()
        except urllib.error.HTTPError as exc:
            if exc.code not in (301, 302, 303, 307, 308):
                raise _http_error(hub, repo, revision, path, exc.code) from None
            headers, status = exc.headers, exc.code
        location = headers.get("Location", "")
        if status < 300 or headers.get("X-Linked-Etag") or not location.startswith("/"):
            break
        url = urljoin(url, location)
    commit = headers.get("X-Repo-Commit", "")
    etag = _normalize_etag(headers.get("X-Linked-Etag") or headers.get("ETag") or "")
    size = headers.get("X-Linked-Size") or headers.get("Content-Length") or ""
    if not _COMMIT.match(commit) or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", etag):
        raise ModelError(
            f"{hub.endpoint} gave no commit or checksum for {repo}/{path}; is HF_ENDPOINT a "
            "Hugging Face hub or a mirror of one?"
        )
    if not size.isdigit():
        raise ModelError(f"{hub.endpoint} gave no size for {repo}/{path}")
    target = urljoin(url, location) if 300 <= status < 400 and location else url
    return RemoteFile(path, commit, etag, int(size), target)


def _http_error(hub: HubSettings, repo: str, revision: str, path: str, code: int) -> ModelError:
    if code == 404:
        return ModelError(
            f"{hub.endpoint} has no file {path} in {repo} at {revision}: check the repository "
            "name; clip: models are laid out like immich-app/ViT-B-32__openai, onnx: models "
            "hold model.onnx and preprocess_cfg.json"
        )
    if code in (401, 403):
        return ModelError(
            f"{hub.endpoint} refused access to {repo} (HTTP {code}): it is private or gated; "
            "set HF_TOKEN to a token that may read it"
        )
    return ModelError(f"{hub.endpoint} answered HTTP {code} for {repo}/{path}; try again later")


def _download(
    hub: HubSettings,
    repo: str,
    remote: RemoteFile,
    target: Path,
    progress: DownloadProgress | None,
) -> None:
    """Fetch `remote` to `target` (resuming a partial download), then verify its hash."""
    if target.is_file():
        return
    partial = target.with_name(target.name + ".incomplete")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        done = partial.stat().st_size if partial.exists() else 0
    except OSError as exc:
        raise ModelError(f"cannot write to the model cache {target.parent}: {exc}") from exc
    if done > remote.size:
        partial.unlink()
        done = 0
    try:
        if done < remote.size:
            _get(hub, remote, partial, done, progress)
    except _NETWORK_ERRORS as exc:
        have = partial.stat().st_size if partial.exists() else 0
        raise ModelError(
            f"the download of {repo}/{remote.path} stopped at {have} of {remote.size} bytes "
            f"({_reason(exc)}): run the same command again to resume it"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot write to the model cache {target.parent}: {exc}") from exc
    _verify(repo, remote, partial)
    os.chmod(partial, 0o644)
    os.replace(partial, target)


def _get(
    hub: HubSettings,
    remote: RemoteFile,
    partial: Path,
    done: int,
    progress: DownloadProgress | None,
) -> None:
    headers = {"Range": f"bytes={done}-"} if done else {}
    try:
        response = urllib.request.urlopen(
            _request(hub, remote.url, "GET", headers), timeout=TIMEOUT_S
        )
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # nothing left to send: the partial file is complete
            return
        raise ModelError(f"{remote.url} answered HTTP {exc.code}; try again later") from None
    with response:
        if response.status != 206:  # the server ignored the Range header: start over
            done = 0
        with partial.open("ab" if done else "wb") as out:
            _copy(response, out, remote, done, progress)
    if partial.stat().st_size < remote.size:
        raise ConnectionError("the connection closed early")


def _copy(
    source: IO[bytes],
    out: IO[bytes],
    remote: RemoteFile,
    done: int,
    progress: DownloadProgress | None,
) -> None:
    while chunk := source.read(CHUNK):
        out.write(chunk)
        done += len(chunk)
        if done > remote.size:
            raise ModelError(f"{remote.url} sent more than the {remote.size} bytes announced")
        if progress is not None:
            progress(remote.path, done, remote.size)


def _verify(repo: str, remote: RemoteFile, path: Path) -> None:
    if len(remote.etag) == 64:
        kind, digest = "SHA-256", hashlib.sha256()
    else:
        kind, digest = "git SHA-1", hashlib.sha1()
        digest.update(f"blob {remote.size}\0".encode("ascii"))
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != remote.etag:
        path.unlink()
        raise ModelError(
            f"{repo}/{remote.path} does not match the hub's {kind} checksum ({remote.etag}): the "
            "download was damaged and has been deleted; run the command again"
        )


def _normalize_etag(value: str) -> str:
    value = value.strip()
    return value.removeprefix("W/").strip('"').lower()


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc or type(exc).__name__)


def is_local(location: str) -> bool:
    """A model location is a local path when it looks like one or exists; else a hub repo."""
    return location.startswith(("/", ".", "~")) or os.path.exists(location)


def model_folder(
    location: str,
    files: Sequence[str],
    *,
    cache_dir: Path,
    hub: HubSettings | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """The folder holding `files`: a local folder as it is, a hub repo downloaded into the cache."""
    if not is_local(location):
        repo, revision = parse_repo(location)
        return fetch(
            repo, files, cache_dir=cache_dir, revision=revision, hub=hub, progress=progress
        )
    folder = Path(location).expanduser().absolute()
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"the model folder {folder} has no {', '.join(missing)}")
    return folder


INLINE_WEIGHTS_BYTES = 64 * 1024 * 1024  # a graph file this large keeps its weights inside


def external_data_files(model_path: Path) -> list[str]:
    """The files a (small) ONNX graph keeps its weights in, relative to its folder; a large
    model exported in two parts (immich-app's ViT-g-14, say) is such a graph."""
    if model_path.stat().st_size > INLINE_WEIGHTS_BYTES:
        return []
    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # onnx raises its own untyped errors for a damaged file
        raise ModelError(f"{model_path} is not a readable ONNX model: {exc}") from exc
    names: set[str] = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            names.add(entries.get("location", ""))
    bad = [n for n in names if not n or Path(n).is_absolute() or ".." in Path(n).parts]
    if bad:
        raise ModelError(f"{model_path} points at weights outside its folder: {bad[0]!r}")
    return sorted(names)


def fetch_external_data(
    location: str,
    folder: Path,
    graphs: Sequence[str],
    *,
    cache_dir: Path,
    hub: HubSettings | None = None,
    progress: DownloadProgress | None = None,
) -> None:
    """Make sure the external weight files of the `graphs` (paths in `folder`) are there too."""
    extra = [
        str(Path(graph).parent / name) if Path(graph).parent != Path(".") else name
        for graph in graphs
        for name in external_data_files(folder / graph)
    ]
    if extra:
        model_folder(location, extra, cache_dir=cache_dir, hub=hub, progress=progress)
