"""The default embedder end to end: the real checkpoint, converted to ONNX, run on real photos."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

import picmatch.models
from picmatch.errors import ConfigError, ModelError
from picmatch.models import efficientnet_graph
from picmatch.models.base import Embedder, Modality
from picmatch.models.efficientnet import EfficientNetLite0
from picmatch.models.registry import load_embedder

pytestmark = pytest.mark.model

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967


def square_224(image: np.ndarray) -> np.ndarray:
    """Centre-crop to a square, then resize to 224x224 (the test's own preprocessing)."""
    pil = Image.fromarray(image)
    side = min(pil.size)
    left, top = (pil.width - side) // 2, (pil.height - side) // 2
    pil = pil.crop((left, top, left + side, top + side))
    return np.asarray(pil.resize((224, 224), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def model(cache_dir: Path) -> EfficientNetLite0:
    return EfficientNetLite0(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    sources = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(7)]
    return [square_224(s) for s in sources] + noise


def test_satisfies_the_embedder_contract(model: EfficientNetLite0) -> None:
    assert isinstance(model, Embedder)
    assert (model.spec, model.dim, model.modalities) == (
        "efficientnet-lite0",
        1280,
        {Modality.IMAGE},
    )
    assert (model.preprocess.size, model.preprocess.mean, model.preprocess.std) == (
        224,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
    )


def test_classifies_chelsea_as_a_cat_and_coffee_as_espresso(
    model: EfficientNetLite0, photos: list[np.ndarray]
) -> None:
    logits = model.classify(photos[:2])
    assert logits.shape == (2, 1000) and logits.dtype == np.float32
    assert int(np.argmax(logits[0])) in CATS
    assert int(np.argmax(logits[1])) == ESPRESSO


def test_embeddings_are_unit_norm_float32_and_deterministic(
    model: EfficientNetLite0, photos: list[np.ndarray]
) -> None:
    first = model.embed_images(photos)
    assert first.shape == (len(photos), 1280) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, model.embed_images(photos))
    assert model.embed_images([]).shape == (0, 1280)


def test_embeddings_do_not_depend_on_batch_size(cache_dir: Path, photos: list[np.ndarray]) -> None:
    one = EfficientNetLite0(cache_dir=cache_dir, batch_size=1).embed_images(photos)
    eight = EfficientNetLite0(cache_dir=cache_dir, batch_size=8).embed_images(photos)
    np.testing.assert_allclose(one, eight, atol=1e-5)


def test_second_load_reuses_the_cached_graph(
    model: EfficientNetLite0, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mtime = model.model_path.stat().st_mtime_ns
    assert model.model_path.parent == cache_dir
    assert f"conv{efficientnet_graph.CONVERTER_VERSION}-" in model.model_path.name

    def no_rebuild(*_: object) -> None:
        raise AssertionError("the graph was converted again")

    monkeypatch.setattr(efficientnet_graph, "build_graph", no_rebuild)
    again = EfficientNetLite0(cache_dir=cache_dir)
    assert again.model_path == model.model_path
    assert again.model_path.stat().st_mtime_ns == mtime
    assert [p.name for p in cache_dir.iterdir()] == [model.model_path.name]  # no temp files


def test_a_new_converter_version_converts_again(
    model: EfficientNetLite0, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        efficientnet_graph, "CONVERTER_VERSION", efficientnet_graph.CONVERTER_VERSION + 1
    )
    newer = EfficientNetLite0(cache_dir=cache_dir)
    assert newer.model_path != model.model_path and newer.model_path.is_file()
    newer.model_path.unlink()


def test_a_damaged_cache_file_is_converted_again(tmp_path: Path, photos: list[np.ndarray]) -> None:
    path = EfficientNetLite0(cache_dir=tmp_path).model_path
    path.write_bytes(b"truncated")
    repaired = EfficientNetLite0(cache_dir=tmp_path)
    assert repaired.model_path.stat().st_size > 1_000_000
    assert repaired.embed_images(photos[:1]).shape == (1, 1280)


def test_refuses_a_malicious_checkpoint(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, (f"touch {marker}",))

    checkpoint = tmp_path / "evil.pth"
    checkpoint.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(ModelError, match="refusing"):
        EfficientNetLite0(cache_dir=tmp_path / "cache", checkpoint=checkpoint)
    assert not marker.exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_has_no_text_tower(model: EfficientNetLite0) -> None:
    with pytest.raises(ModelError, match="no text tower"):
        model.embed_text(["a cat"])


def test_rejects_arrays_that_are_not_rgb_images(model: EfficientNetLite0) -> None:
    with pytest.raises(ModelError, match="RGB"):
        model.embed_images([np.zeros((224, 224), np.uint8)])
    with pytest.raises(ModelError, match="RGB"):
        model.embed_images([np.zeros((224, 224, 3), np.float32)])


def test_resizes_other_sizes_with_the_decoder(model: EfficientNetLite0) -> None:
    pytest.importorskip("picmatch.images.decode")
    vectors = model.embed_images([skimage.data.chelsea(), skimage.data.coffee()])
    assert vectors.shape == (2, 1280)
    assert int(np.argmax(model.classify([skimage.data.chelsea()])[0])) in CATS


def test_registry_loads_the_default_model(cache_dir: Path) -> None:
    embedder = load_embedder("efficientnet-lite0", cache_dir=cache_dir, batch_size=2)
    assert isinstance(embedder, EfficientNetLite0) and embedder.batch_size == 2


def test_registry_rejects_unknown_specs_and_options(cache_dir: Path) -> None:
    with pytest.raises(ConfigError, match="efficientnet-lite0"):
        load_embedder("resnet-9000")
    with pytest.raises(ConfigError, match="valid options"):
        load_embedder("efficientnet-lite0", cache_dir=cache_dir, colour="blue")
    with pytest.raises(ConfigError):
        load_embedder("efficientnet-lite0", cache_dir=cache_dir, batch_size=0)


def test_importing_the_registry_loads_no_runtime() -> None:
    src = Path(picmatch.models.__file__).parents[2]
    code = (
        "import sys, picmatch.models.registry; "
        "sys.exit(bool({'onnx', 'onnxruntime'} & set(sys.modules)))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0
