"""Hub downloads against a local server that answers like the hub: cache, resume, checksums,
offline use, and the errors a user sees without a network."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from picmatch.errors import ModelError
from picmatch.models.clip import ClipEmbedder
from picmatch.models.hub import cached_repos, repo_folder
from picmatch.models.registry import load_embedder
from tests.hubserver import FakeHub, serve_hub
from tests.modelgen import write_clip_repo

REPO = "test-org/tiny-clip"
SPEC = f"clip:{REPO}"


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip_repo(tmp_path_factory.mktemp("clip") / "repo")


@pytest.fixture
def hub(clip_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake = FakeHub()
    fake.add_folder(REPO, clip_folder)
    with serve_hub(fake) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield served


def gets(hub: FakeHub) -> list[tuple[str, str, str]]:
    return [entry for entry in hub.log if entry[0] == "GET"]


def test_first_use_downloads_into_the_cache_then_reuses_it(
    hub: FakeHub, clip_folder: Path, tmp_path: Path
) -> None:
    progress: list[tuple[str, int, int]] = []
    model = load_embedder(SPEC, cache_dir=tmp_path, download_progress=lambda *a: progress.append(a))
    assert isinstance(model, ClipEmbedder) and model.spec == SPEC
    assert model.folder.parent.parent == repo_folder(tmp_path, REPO)
    for path, data in hub.repos[REPO].items():
        assert (model.folder / path).read_bytes() == data
    size = len(hub.repos[REPO]["visual/model.onnx"])
    assert ("visual/model.onnx", size, size) in progress
    assert any(path.startswith("/cdn/") for _, path, _ in gets(hub))  # LFS files via the CDN
    assert model.embed_images([np.zeros((40, 50, 3), np.uint8)]).shape == (1, 8)
    hub.log.clear()
    again = load_embedder(SPEC, cache_dir=tmp_path)
    assert again.dim == 8 and gets(hub) == []  # checked against the hub, nothing fetched
    (listed,) = cached_repos(tmp_path)
    assert listed.repo == REPO and listed.revisions == {"main": hub.commits[REPO]}
    assert listed.size_bytes == sum(len(d) for d in hub.repos[REPO].values()) + 40  # + ref


def test_a_cut_off_download_resumes_where_it_stopped(hub: FakeHub, tmp_path: Path) -> None:
    data = hub.repos[REPO]["visual/model.onnx"]
    half = len(data) // 2
    hub.cut_after["visual/model.onnx"] = half
    with pytest.raises(ModelError, match=f"stopped at {half} of {len(data)} bytes.*run the same"):
        load_embedder(SPEC, cache_dir=tmp_path)
    (partial,) = repo_folder(tmp_path, REPO).rglob("model.onnx.incomplete")
    assert partial.read_bytes() == data[:half]
    hub.log.clear()
    model = load_embedder(SPEC, cache_dir=tmp_path)
    assert ("GET", f"/cdn/{hashlib.sha256(data).hexdigest()}", f"bytes={half}-") in hub.log
    assert (model.folder / "visual/model.onnx").read_bytes() == data  # type: ignore[attr-defined]
    assert not partial.exists()


@pytest.mark.parametrize(
    ("path", "kind"), [("visual/model.onnx", "SHA-256"), ("textual/tokenizer.json", "git SHA-1")]
)
def test_a_file_that_does_not_match_the_hub_hash_is_refused(
    hub: FakeHub, tmp_path: Path, path: str, kind: str
) -> None:
    hub.corrupt.add(path)
    with pytest.raises(ModelError, match=f"does not match the hub's {kind} checksum"):
        load_embedder(SPEC, cache_dir=tmp_path)
    name = path.rsplit("/", 1)[1]
    assert list(repo_folder(tmp_path, REPO).rglob(name + "*")) == []  # nothing damaged is kept
    hub.corrupt.clear()
    assert load_embedder(SPEC, cache_dir=tmp_path).dim == 8


def test_offline_with_a_cached_copy_uses_it_without_the_network(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_embedder(SPEC, cache_dir=tmp_path)
    hub.log.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_embedder(SPEC, cache_dir=tmp_path)
    assert hub.log == [] and model.embed_text(["red"]).shape == (1, 8)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.down = True  # the hub is unreachable: the cached copy still works
    assert load_embedder(SPEC, cache_dir=tmp_path).dim == 8


def test_offline_without_a_cached_copy_says_what_to_do(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"not in the model cache.*unset HF_HUB_OFFLINE"):
        load_embedder(SPEC, cache_dir=tmp_path)
    assert hub.log == []


def test_no_network_and_no_cache_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelError, match=f"cannot download {REPO} from .*Connect to the network"):
        load_embedder(SPEC, cache_dir=tmp_path)


def test_an_unknown_repo_or_a_missing_file_is_named(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"has no file config\.json in test-org/other"):
        load_embedder("clip:test-org/other", cache_dir=tmp_path)
    with pytest.raises(ModelError, match=r"has no file model\.onnx"):
        load_embedder(f"onnx:{REPO}", cache_dir=tmp_path)


def test_weights_kept_beside_the_graph_are_fetched_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeHub()
    fake.add_folder("test-org/split-clip", write_clip_repo(tmp_path / "split", external=True))
    with serve_hub(fake) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        model = load_embedder("clip:test-org/split-clip", cache_dir=tmp_path / "cache")
        fetched = {p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for _, p, _ in served.log}
    assert isinstance(model, ClipEmbedder)
    for tower in ("visual", "textual"):
        assert (model.folder / tower / "model.onnx_data").is_file()
        assert f"{tower}/model.onnx_data" in fetched
    assert model.embed_images([np.zeros((32, 32, 3), np.uint8)]).shape == (1, 8)
    assert model.embed_text(["red"]).shape == (1, 8)
