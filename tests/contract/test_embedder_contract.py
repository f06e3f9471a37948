"""One suite over every embedder family: the same contract, checked on real model files.

efficientnet-lite0 is the real default model; the CLIP and generic ONNX families run on small
models of the real formats that tests/modelgen.py builds (nothing can be downloaded here).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from picmatch.errors import ModelError
from picmatch.models.base import Embedder, Modality
from picmatch.models.registry import load_embedder
from tests.modelgen import COLOURS, write_clip_repo, write_onnx_model

Factory = Callable[[Path], Embedder]


def _efficientnet(cache: Path) -> Embedder:
    return load_embedder("efficientnet-lite0", cache_dir=cache / "models", batch_size=2)


def _clip(cache: Path) -> Embedder:
    folder = write_clip_repo(cache / "clip")
    return load_embedder(f"clip:{folder}", cache_dir=cache, batch_size=2)


def _onnx_file(cache: Path) -> Embedder:
    folder = write_onnx_model(cache / "onnx")
    return load_embedder(f"onnx:{folder / 'model.onnx'}", cache_dir=cache, batch_size=2)


def _onnx_folder(cache: Path) -> Embedder:
    folder = write_onnx_model(cache / "onnx-folder")
    return load_embedder(f"onnx:{folder}", cache_dir=cache, batch_size=3)


FAMILIES = {
    "efficientnet": pytest.param(_efficientnet, marks=pytest.mark.model),
    "clip": pytest.param(_clip),
    "onnx-file": pytest.param(_onnx_file),
    "onnx-folder": pytest.param(_onnx_folder),
}


@pytest.fixture(scope="module", params=list(FAMILIES.values()), ids=list(FAMILIES))
def embedder(request: pytest.FixtureRequest, model_cache: Path) -> Embedder:
    factory: Factory = request.param
    return factory(model_cache)


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [
        rng.integers(0, 256, size=(60 + 13 * i, 90 - 7 * i, 3), dtype=np.uint8) for i in range(5)
    ]
    out.append(np.full((48, 64, 3), COLOURS["red"], np.uint8))
    return out


def norms(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x, axis=1)


def test_the_embedder_describes_itself(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.spec and embedder.dim > 0 and embedder.batch_size >= 1
    assert Modality.IMAGE in embedder.modalities
    assert embedder.preprocess.size > 0


def test_image_vectors_have_the_shape_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.embed_images(images())
    assert vectors.shape == (6, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(norms(vectors), 1.0, atol=1e-5)
    assert embedder.embed_images([]).shape == (0, embedder.dim)
    assert len({tuple(np.round(v, 4)) for v in vectors}) == 6  # different images, different vectors


def test_image_vectors_are_deterministic_and_batch_independent(embedder: Embedder) -> None:
    batch = embedder.embed_images(images())
    again = embedder.embed_images(images())
    single = np.concatenate([embedder.embed_images([im]) for im in images()])
    np.testing.assert_array_equal(batch, again)
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_an_image_at_the_input_size_is_not_resized_again(embedder: Embedder) -> None:
    from picmatch.images.fit import fit_to_input

    image = images()[0]
    fitted = fit_to_input(image, embedder.preprocess)
    np.testing.assert_array_equal(embedder.embed_images([image]), embedder.embed_images([fitted]))


def test_bad_pixels_are_a_model_error(embedder: Embedder) -> None:
    with pytest.raises(ModelError, match="uint8"):
        embedder.embed_images([np.zeros((10, 10, 3), np.float32)])  # type: ignore[list-item]
    with pytest.raises(ModelError, match="3 channels"):
        embedder.embed_images([np.zeros((10, 10, 4), np.uint8)])


def test_text_follows_the_modalities(embedder: Embedder) -> None:
    texts = ["a red bicycle", "a dog on the beach", "blue"]
    if Modality.TEXT not in embedder.modalities:
        with pytest.raises(ModelError, match="text"):
            embedder.embed_text(texts)
        return
    vectors = embedder.embed_text(texts)
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(norms(vectors), 1.0, atol=1e-5)
    single = np.concatenate([embedder.embed_text([t]) for t in texts])
    np.testing.assert_allclose(vectors, single, atol=1e-5)
    np.testing.assert_array_equal(vectors, embedder.embed_text(texts))
    assert len({tuple(np.round(v, 4)) for v in vectors}) == 3
