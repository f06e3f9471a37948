"""Several models side by side in one library, text search, and the adapters over them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picmatch import open_library
from picmatch.cli import main
from picmatch.errors import ConfigError, ModelError
from tests.modelgen import COLOURS, write_clip_repo

DEFAULT = "efficientnet-lite0"


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"clip:{write_clip_repo(tmp_path_factory.mktemp('clip') / 'ViT-tiny')}"


@pytest.fixture
def colours(tmp_path: Path) -> Path:
    """Plain colour photos (with a little noise); names say the colour."""
    folder = tmp_path / "colours"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, rgb in COLOURS.items():
        pixels = np.clip(np.array(rgb) + rng.normal(0, 12, (90, 120, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def hits_of(hits: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    return [(Path(h.path).name, round(h.score, 5)) for h in hits]


def test_a_text_query_finds_the_photo_it_describes(
    colours: Path, clip_spec: str, tmp_path: Path, model_cache: Path
) -> None:
    with open_library(tmp_path / "lib", model=clip_spec, cache_dir=model_cache) as lib:
        lib.index([colours])
        for name in COLOURS:
            hits = lib.search_text(f"a photo of something {name}", k=3)
            assert Path(hits[0].path).name == f"{name}.png", hits_of(hits)
        assert lib.stats().text_models == (clip_spec,)
        with pytest.raises(ConfigError, match="text query is empty"):
            lib.search_text("  ")


def test_two_models_side_by_side_stay_independent(
    colours: Path, clip_spec: str, tmp_path: Path, model_cache: Path
) -> None:
    folder = tmp_path / "lib"
    with open_library(folder, cache_dir=model_cache) as lib:
        lib.index([colours])
        before = hits_of(lib.search(colours / "red.png", k=3))
        with pytest.raises(ConfigError, match="has no text model"):
            lib.search_text("red")
    with open_library(folder, model=clip_spec, cache_dir=model_cache) as lib:
        report = lib.index([colours])  # adds the clip space only
        assert report.embedded == 3
        assert lib.spaces[0].model == DEFAULT and lib.spaces[1].model == clip_spec
    with open_library(folder, cache_dir=model_cache) as lib:
        assert lib.model_spec == DEFAULT and lib.count() == 3 and lib.count(model=clip_spec) == 3
        assert hits_of(lib.search(colours / "red.png", k=3)) == before  # untouched
        clip_hits = lib.search(colours / "red.png", k=3, model=clip_spec)
        assert hits_of(clip_hits) != before and Path(clip_hits[0].path).name == "red.png"
        with pytest.raises(ConfigError, match=f"that can: {clip_spec}"):
            lib.search_text("red")
        assert Path(lib.search_text("red", model=clip_spec)[0].path).name == "red.png"
        (colours / "blue.png").unlink()
        again = lib.index([colours])  # every space, from one scan
        assert again.removed == 1 and lib.count() == 2 and lib.count(model=clip_spec) == 2
        assert lib.drop_space(clip_spec) == 2
        assert [s.model for s in lib.spaces] == [DEFAULT] and lib.count() == 2
        with pytest.raises(ConfigError, match=f"has no vectors of {clip_spec}"):
            lib.search(colours / "red.png", model=clip_spec)
        with pytest.raises(ConfigError, match="only model"):
            lib.drop_space(DEFAULT)
    manifest = json.loads((folder / "library.json").read_text())
    assert manifest["model"] == DEFAULT and len(manifest["spaces"]) == 1


def test_a_model_this_version_lacks_is_a_clear_error(
    colours: Path, tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "lib"
    with open_library(folder, cache_dir=model_cache) as lib:
        lib.index([colours])
    manifest = json.loads((folder / "library.json").read_text())
    first = {"model": manifest["model"], "params": manifest["params"]}
    manifest["spaces"] = [first, {"model": "siglip9:future/model", "params": {}}]
    (folder / "library.json").write_text(json.dumps(manifest))
    with open_library(folder, cache_dir=model_cache) as lib:
        assert lib.stats().models == (DEFAULT, "siglip9:future/model")
        assert lib.search(colours / "red.png", k=1)  # the other space still works
        with pytest.raises(ModelError, match="does not have: upgrade picmatch"):
            lib.search(colours / "red.png", k=1, model="siglip9:future/model")
    code = main(["index", str(colours), "--library", str(folder), "-q"])
    err = capsys.readouterr().err
    assert code == ModelError.exit_code and "siglip9:future/model" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_text_search_models_and_drop(
    colours: Path, clip_spec: str, tmp_path: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(colours), "-q"]) == 0
    assert main(["index", str(colours), "--model", clip_spec, "-q"]) == 0
    capsys.readouterr()
    assert main(["search", "--text", "a red thing", "--model", clip_spec, "-k", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith("red.png")
    assert main(["search", "--text", "red"]) == 2
    assert f"use --model {clip_spec}" in capsys.readouterr().err
    assert main(["search"]) == 2
    assert "give an IMAGE or --text" in capsys.readouterr().err
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"{DEFAULT}" in out and "3 images (default)" in out and clip_spec in out
    assert main(["models", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[clip_spec]["text"] and rows[DEFAULT]["cached_bytes"] > 1_000_000
    assert main(["models", "--drop", clip_spec]) == 0
    assert "dropped the vector space" in capsys.readouterr().out
    assert main(["search", str(colours / "red.png"), "--model", clip_spec]) == 2
