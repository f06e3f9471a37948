"""The CLIP tokenizer against the reference implementation of its file format (`tokenizers`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from picmatch.errors import ModelError
from picmatch.models.clip_tokenizer import ClipTokenizer
from tests.modelgen import CONTEXT, END, clip_vocab, tokenizer_json

tokenizers = pytest.importorskip("tokenizers")

TEXTS = [
    "a photo of a red bicycle",
    "A  Photo\tOF   the  DOG on the beach!!",
    "it's a dog's photo; it'll do",
    "red, green & blue: 3 colours (42 in all)",
    "café naïve résumé — ünïcödé",
    "emoji 🐶🏖️ and 漢字 and Ελληνικά",
    "",
    "   ",
    "x" * 40 + " " + "photo " * 100,  # longer than the context: truncated
    "<|endoftext|> inside the text",
]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_text(json.dumps(tokenizer_json(*clip_vocab())))
    return path


def reference_ids(path: Path, texts: list[str]) -> np.ndarray:
    """What immich does with the reference tokenizer: pad and truncate to the context."""
    ref = tokenizers.Tokenizer.from_file(str(path))
    pad_id = ref.token_to_id(END)
    ref.enable_padding(length=CONTEXT, pad_token=END, pad_id=pad_id)
    ref.enable_truncation(max_length=CONTEXT)
    return np.array([e.ids for e in ref.encode_batch(texts)], np.int32)


def test_ids_equal_the_reference_tokenizer(tokenizer_file: Path) -> None:
    ours = ClipTokenizer(tokenizer_file, context_length=CONTEXT, pad_token=END)(TEXTS)
    expected = reference_ids(tokenizer_file, TEXTS)
    assert ours.shape == (len(TEXTS), CONTEXT) and ours.dtype == np.int32
    for text, mine, ref in zip(TEXTS, ours, expected, strict=True):
        assert mine.tolist() == ref.tolist(), text


def test_known_words_are_single_tokens(tokenizer_file: Path) -> None:
    vocab, _ = clip_vocab()
    ids = ClipTokenizer(tokenizer_file).encode("Red BICYCLE")
    assert ids == [vocab["<|startoftext|>"], vocab["red</w>"], vocab["bicycle</w>"], vocab[END]]


def test_a_tokenizer_of_another_kind_is_refused(tmp_path: Path) -> None:
    data = tokenizer_json(*clip_vocab())
    data["model"] = {"type": "Unigram", "vocab": []}  # type: ignore[assignment]
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="not a CLIP BPE tokenizer"):
        ClipTokenizer(path)
    path.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read the tokenizer"):
        ClipTokenizer(path)
