"""The CLIP family on a model of the immich-app layout: text and images share one space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from picmatch.errors import ModelError
from picmatch.models.registry import load_embedder
from tests.modelgen import COLOURS, write_clip_repo


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip_repo(tmp_path_factory.mktemp("clip") / "ViT-tiny__test")


def test_a_text_query_is_nearest_to_the_image_it_describes(
    clip_folder: Path, tmp_path: Path
) -> None:
    model = load_embedder(f"clip:{clip_folder}", cache_dir=tmp_path)
    names = list(COLOURS)
    pictures = model.embed_images([np.full((50, 70, 3), COLOURS[n], np.uint8) for n in names])
    for name in names:
        (query,) = model.embed_text([f"A photo of something {name.upper()}!"])
        scores = pictures @ query
        assert names[int(np.argmax(scores))] == name, (name, scores)


def test_a_missing_file_or_a_bad_config_is_named(clip_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    write_clip_repo(broken)
    (broken / "textual" / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"has no textual/tokenizer\.json"):
        load_embedder(f"clip:{broken}", cache_dir=tmp_path)
    write_clip_repo(broken)
    (broken / "visual" / "preprocess_cfg.json").write_text(json.dumps({"size": 32, "mean": [1]}))
    with pytest.raises(ModelError, match="'mean' and 'std' must be three numbers"):
        load_embedder(f"clip:{broken}", cache_dir=tmp_path)


def test_a_bad_spec_is_a_config_error(tmp_path: Path) -> None:
    from picmatch.errors import ConfigError

    with pytest.raises(ConfigError, match="not a hub repository"):
        load_embedder("clip:not a repo", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="names no model"):
        load_embedder("clip:", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="valid specs are efficientnet-lite0, clip:REPO_OR_PATH"):
        load_embedder("vit-huge", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown model option"):
        load_embedder("clip:a/b", cache_dir=tmp_path, power="0.5")
