"""The CLIP text tokenizer, read from a ``tokenizer.json`` file (the Hugging Face format).

CLIP-family repositories (immich-app's ONNX exports among them) ship the tokenizer as
``textual/tokenizer.json``: a byte-level BPE with the ``</w>`` end-of-word suffix, a normalizer
(NFC, whitespace runs to one space, lower case), a split on CLIP's word pattern, and a
post-processor that wraps the tokens in ``<|startoftext|>`` ... ``<|endoftext|>``. This module
reads exactly that, in pure Python, and refuses any other tokenizer with a clear error, so text
queries need no native tokenizer package. tests/unit/test_clip_tokenizer.py checks its ids
against the reference implementation (the ``tokenizers`` package).

As immich does, the ids are truncated and padded to the model's context length with the
tokenizer config's ``pad_token``.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from picmatch.errors import ModelError

# The word pattern of CLIP's tokenizer, as its tokenizer.json spells it.
CLIP_PATTERN = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
_NORMAL_FORMS = {"NFC", "NFD", "NFKC", "NFKD"}


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: every byte as a printable character."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


class ClipTokenizer:
    """Text -> int32 token ids [n, context_length], like the reference with padding on."""

    def __init__(self, path: Path, *, context_length: int = 77, pad_token: str | None = None):
        data = _read_json(path)
        self.path = path
        self.context_length = context_length
        model = data.get("model") or {}
        if model.get("type") != "BPE" or model.get("continuing_subword_prefix") not in ("", None):
            raise _unsupported(path, f"model type {model.get('type')!r}")
        self.vocab: dict[str, int] = dict(model.get("vocab") or {})
        self.suffix: str = model.get("end_of_word_suffix") or ""
        self.ranks = {pair: i for i, pair in enumerate(_merges(model.get("merges") or []))}
        self.unk_id = self.vocab.get(model.get("unk_token") or "")
        self.added = {t["content"]: int(t["id"]) for t in data.get("added_tokens") or []}
        self._normalizers = _normalizers(path, data.get("normalizer"))
        _check_pre_tokenizer(path, data.get("pre_tokenizer"))
        self.start_id, self.end_id = _wrapping(path, data.get("post_processor"), self._id)
        self.pad_id = self._id(pad_token) if pad_token else self.end_id
        self._cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        """Token ids of one text: start, the text's tokens (truncated), end; no padding."""
        ids: list[int] = []
        for piece, special in self._split_added(text):
            if special:
                ids.append(self.added[piece])
                continue
            for word in _words(self._normalize(piece)):
                ids.extend(self._bpe(word))
        return [self.start_id, *ids[: self.context_length - 2], self.end_id]

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.int32]:
        out = np.full((len(texts), self.context_length), self.pad_id, np.int32)
        for row, text in enumerate(texts):
            ids = self.encode(text)
            out[row, : len(ids)] = ids
        return out

    # internals

    def _id(self, token: str) -> int:
        if token in self.added:
            return self.added[token]
        if token in self.vocab:
            return self.vocab[token]
        raise _unsupported(self.path, f"no token {token!r}")

    def _split_added(self, text: str) -> Iterator[tuple[str, bool]]:
        """The text around added (special) tokens, which map to their ids unchanged."""
        if not self.added:
            yield text, False
            return
        pattern = "|".join(re.escape(t) for t in sorted(self.added, key=len, reverse=True))
        start = 0
        for match in re.finditer(pattern, text):
            if match.start() > start:
                yield text[start : match.start()], False
            yield match.group(), True
            start = match.end()
        if start < len(text):
            yield text[start:], False

    def _normalize(self, text: str) -> str:
        for step in self._normalizers:
            text = step(text)
        return text

    def _bpe(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        table = bytes_to_unicode()
        parts = [table[b] for b in word.encode("utf-8")]
        parts[-1] += self.suffix
        while len(parts) > 1:
            pairs = itertools.pairwise(parts)
            ranks = [(self.ranks.get(pair, -1), i) for i, pair in enumerate(pairs)]
            ranked = [(rank, i) for rank, i in ranks if rank >= 0]
            if not ranked:
                break
            best = min(ranked)[0]
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and self.ranks.get((parts[i], parts[i + 1])) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = [self.vocab.get(p, self.unk_id) for p in parts]
        result = [i for i in ids if i is not None]
        if len(self._cache) < 10_000:
            self._cache[word] = result
        return result


def _words(text: str) -> Iterator[str]:
    """CLIP's word pattern, matched left to right; whitespace and unmatched text are dropped."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        special = next((s for s in _SPECIALS if text.startswith(s, i)), None)
        contraction = next((c for c in _CONTRACTIONS if text.startswith(c, i)), None)
        if special or contraction:
            token = special or contraction or ""
            yield token
            i += len(token)
        elif _is_letter(ch):
            j = i + 1
            while j < n and _is_letter(text[j]):
                j += 1
            yield text[i:j]
            i = j
        elif _is_number(ch):
            yield ch
            i += 1
        elif ch.isspace():
            i += 1
        else:
            j = i + 1
            while j < n and not (text[j].isspace() or _is_letter(text[j]) or _is_number(text[j])):
                j += 1
            yield text[i:j]
            i = j


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_number(ch: str) -> bool:
    return unicodedata.category(ch).startswith("N")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the tokenizer {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a tokenizer.json file")
    return data


def _unsupported(path: Path, what: str) -> ModelError:
    return ModelError(
        f"the tokenizer {path} is not a CLIP BPE tokenizer ({what}); picmatch reads the "
        "tokenizer of OpenAI CLIP / OpenCLIP ViT models, such as immich-app/ViT-B-32__openai"
    )


def _merges(raw: list[Any]) -> Iterator[tuple[str, str]]:
    for merge in raw:
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        yield a, b


def _normalizers(path: Path, spec: dict[str, Any] | None) -> list[Any]:
    if spec is None:
        return []
    kind = spec.get("type")
    if kind == "Sequence":
        return [step for part in spec.get("normalizers", []) for step in _normalizers(path, part)]
    if kind in _NORMAL_FORMS:
        return [functools.partial(unicodedata.normalize, kind)]
    if kind == "Lowercase":
        return [str.lower]
    if kind == "Replace":
        pattern = spec.get("pattern") or {}
        content = spec.get("content", "")
        if "String" in pattern:
            return [lambda s, old=pattern["String"]: s.replace(old, content)]
        if pattern.get("Regex") == r"\s+":
            return [lambda s: re.sub(r"\s+", content, s)]
    raise _unsupported(path, f"normalizer {kind!r}")


def _check_pre_tokenizer(path: Path, spec: dict[str, Any] | None) -> None:
    steps = spec.get("pretokenizers", []) if spec and spec.get("type") == "Sequence" else [spec]
    kinds = [s.get("type") if s else None for s in steps]
    if kinds != ["Split", "ByteLevel"]:
        raise _unsupported(path, f"pre-tokenizer {kinds}")
    split, byte_level = steps[0] or {}, steps[1] or {}
    pattern = (split.get("pattern") or {}).get("Regex")
    if pattern != CLIP_PATTERN or not split.get("invert") or split.get("behavior") != "Removed":
        raise _unsupported(path, "a word pattern other than CLIP's")
    if byte_level.get("add_prefix_space") or byte_level.get("use_regex"):
        raise _unsupported(path, "a byte-level step with a prefix space or its own pattern")


def _wrapping(path: Path, spec: dict[str, Any] | None, token_id: Any) -> tuple[int, int]:
    """(start id, end id) of the post-processor, which wraps every text in two special tokens."""
    kind = (spec or {}).get("type")
    if kind in ("RobertaProcessing", "BertProcessing"):
        return int(spec["cls"][1]), int(spec["sep"][1])  # type: ignore[index]
    if kind == "TemplateProcessing":
        single = spec.get("single") or []  # type: ignore[union-attr]
        names = [next(iter(item.values()))["id"] for item in single]
        if len(names) == 3 and names[1] == "A":
            return int(token_id(names[0])), int(token_id(names[2]))
    raise _unsupported(path, f"post-processor {kind!r}")
