"""Pipeline params: what a new library records, what the embedder does with them, and that a
library built with older params keeps embedding the way it was built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from picmatch import Library
from picmatch.errors import ConfigError
from picmatch.images.decode import load_for_model
from picmatch.models.base import FlipMode, ResizeMode, power_normalize
from picmatch.models.efficientnet import EfficientNetLite0
from picmatch.models.registry import default_params, load_embedder
from tests.imagegen import photo, synthetic

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def embed(model: EfficientNetLite0, image: Image.Image) -> np.ndarray:
    return model.embed_images([np.asarray(image.convert("RGB"))])[0]


def test_flip_mean_gives_an_image_and_its_mirror_the_same_vector(module_cache: Path) -> None:
    model = EfficientNetLite0(cache_dir=module_cache, resize=ResizeMode.SQUASH, flip="mean")
    cat = photo("chelsea")
    mirrored = embed(model, ImageOps.mirror(cat))
    assert float(embed(model, cat) @ mirrored) > 0.9999
    plain = EfficientNetLite0(cache_dir=module_cache, resize=ResizeMode.SQUASH)
    assert float(embed(plain, cat) @ embed(plain, ImageOps.mirror(cat))) < 0.999


def test_power_is_the_signed_power_of_the_plain_descriptor(module_cache: Path) -> None:
    plain = EfficientNetLite0(cache_dir=module_cache, resize="squash")
    rooted = EfficientNetLite0(cache_dir=module_cache, resize="squash", power="0.5")
    images = [np.asarray(photo("coffee")), np.asarray(synthetic(3))]
    expected = power_normalize(plain.embed_images(images), 0.5)
    got = rooted.embed_images(images)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(got, plain.embed_images(images), atol=1e-3)


def test_power_normalize_keeps_signs_and_unit_length() -> None:
    x = np.array([[4.0, -9.0, 0.0]], np.float32)
    np.testing.assert_allclose(power_normalize(x, 0.5), [[2 / 13**0.5, -3 / 13**0.5, 0.0]])
    np.testing.assert_allclose(power_normalize(x, 1.0), x / np.linalg.norm(x))


@pytest.mark.parametrize(
    "options", [{"power": "0"}, {"power": "1.5"}, {"power": "half"}, {"flip": "both"}]
)
def test_bad_pipeline_values_are_config_errors(module_cache: Path, options: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_embedder("efficientnet-lite0", cache_dir=module_cache, **options)


def test_a_new_library_records_the_default_params(open_lib: OpenLib, library_dir: Path) -> None:
    lib = open_lib()
    assert (
        lib.params == default_params("efficientnet-lite0") == {"resize": "squash", "power": "0.5"}
    )
    assert json.loads((library_dir / "library.json").read_text())["params"] == lib.params
    embedder = lib.embedder
    assert isinstance(embedder, EfficientNetLite0)
    assert (embedder.preprocess.resize, embedder.power, embedder.flip) == (
        ResizeMode.SQUASH,
        0.5,
        FlipMode.NONE,
    )


def test_a_library_built_with_older_params_keeps_them(
    open_lib: OpenLib, library_dir: Path, model_cache: Path, photo_dir: Path
) -> None:
    old = {"resize": "center_crop"}  # what the first libraries recorded
    open_lib(params=old).index([photo_dir])
    lib = open_lib()  # opened again without params: the recorded ones hold
    assert lib.params == old
    legacy = EfficientNetLite0(cache_dir=model_cache / "models")  # the embedder's own defaults
    pixels = load_for_model(photo_dir / "moon.jpg", legacy.preprocess).pixels
    np.testing.assert_allclose(
        lib.query_vector(pixels), legacy.embed_images([pixels])[0], atol=1e-6
    )
    stored = lib.search(photo_dir / "moon.jpg", k=1)[0]
    assert stored.score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ConfigError, match="built with the parameters"):
        open_lib(params={"resize": "squash"})


def test_unknown_params_are_refused_before_anything_is_written(
    open_lib: OpenLib, library_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="unknown pipeline parameter"):
        open_lib(params={"resize": "squash", "colour": "blue"})
    assert not (library_dir / "library.json").exists()


def test_search_can_exclude_images(open_lib: OpenLib, photo_dir: Path) -> None:
    lib = open_lib()
    lib.index([photo_dir])
    query = photo_dir / "coffee.jpg"
    first = lib.search(query, k=3)
    assert first[0].path == str(query)
    rest = lib.search(query, k=3, exclude={first[0].id})
    assert [h.id for h in rest] == [h.id for h in first[1:]] + [rest[-1].id]
    assert first[0].id not in {h.id for h in rest}
