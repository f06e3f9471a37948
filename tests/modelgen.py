"""Small models of the real formats, built by the tests: nothing is downloaded.

`write_clip_repo` lays out a CLIP model like the immich-app ONNX exports (config.json,
visual/model.onnx + preprocess_cfg.json, textual/model.onnx + tokenizer.json +
tokenizer_config.json). Its towers are tiny: the image tower maps the mean normalised colour
through a random 3 x 8 matrix; the text tower sums token embeddings. Colour words ("red",
"green", "blue") embed like an image of that colour, so text queries have a right answer.
`write_onnx_model` writes a single-tower vision model (a convolution and a pooling) with its
preprocessing file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save_model

from picmatch.models.clip_tokenizer import CLIP_PATTERN, bytes_to_unicode

DIM = 8
SIZE = 32
CONTEXT = 77
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
COLOURS = {"red": (255, 0, 0), "green": (0, 160, 0), "blue": (0, 0, 255)}
WORDS = ("a", "photo", "of", "red", "green", "blue", "dog", "on", "the", "beach", "bicycle", "it's")
START, END = "<|startoftext|>", "<|endoftext|>"


def clip_vocab(words: tuple[str, ...] = WORDS) -> tuple[dict[str, int], list[str]]:
    """A CLIP-style BPE vocabulary: the 256 byte characters, the same with ``</w>``, the merges
    that spell `words` letter by letter, then the two special tokens."""
    table = bytes_to_unicode()
    base = [table[b] for b in sorted(table)]
    tokens = base + [c + "</w>" for c in base]
    merges: list[str] = []
    for word in words:
        for piece in word.replace("'", " '").split():
            chars = [table[b] for b in piece.encode()]
            chars[-1] += "</w>"
            current = chars[0]
            for nxt in chars[1:]:
                merge = f"{current} {nxt}"
                current += nxt
                if merge not in merges:
                    merges.append(merge)
                    tokens.append(current)
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    vocab[START] = len(vocab)
    vocab[END] = len(vocab)
    return vocab, merges


def tokenizer_json(vocab: dict[str, int], merges: list[str]) -> dict[str, object]:
    """A tokenizer.json in the layout of OpenAI CLIP's (the Hugging Face tokenizers format)."""
    special = {"single_word": False, "lstrip": False, "rstrip": False, "special": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": vocab[START], "content": START, "normalized": True, **special},
            {"id": vocab[END], "content": END, "normalized": False, **special},
        ],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "NFC"},
                {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
                {"type": "Lowercase"},
            ],
        },
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": CLIP_PATTERN},
                    "behavior": "Removed",
                    "invert": True,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": {
            "type": "RobertaProcessing",
            "sep": [END, vocab[END]],
            "cls": [START, vocab[START]],
            "trim_offsets": False,
            "add_prefix_space": False,
        },
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": END,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>",
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def colour_vector(rgb: tuple[int, int, int], w_visual: np.ndarray) -> np.ndarray:
    """What the tiny image tower gives for a plain image of colour `rgb` (before L2)."""
    normalised = (np.array(rgb, np.float32) / 255 - np.array(MEAN, np.float32)) / np.array(
        STD, np.float32
    )
    return (normalised @ w_visual).astype(np.float32)


def write_clip_repo(folder: Path, seed: int = 0, *, external: bool = False) -> Path:
    """A complete CLIP model folder in the immich-app layout; returns `folder`. With
    `external`, each tower keeps its weights in ``model.onnx_data`` beside the graph, as large
    exports do."""
    rng = np.random.default_rng(seed)
    vocab, merges = clip_vocab()
    w_visual = rng.normal(size=(3, DIM)).astype(np.float32)
    table = rng.normal(scale=0.1, size=(len(vocab), DIM)).astype(np.float32)
    table[[vocab[START], vocab[END]]] = 0.0
    for word, rgb in COLOURS.items():
        table[vocab[word + "</w>"]] = 10 * colour_vector(rgb, w_visual)
    (folder / "visual").mkdir(parents=True, exist_ok=True)
    (folder / "textual").mkdir(parents=True, exist_ok=True)
    config = {
        "embed_dim": DIM,
        "vision_cfg": {"image_size": SIZE, "layers": 1, "width": 8, "patch_size": 16},
        "text_cfg": {
            "context_length": CONTEXT,
            "vocab_size": len(vocab),
            "width": 8,
            "heads": 1,
            "layers": 1,
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    preprocess = {
        "size": [SIZE, SIZE],
        "mode": "RGB",
        "mean": list(MEAN),
        "std": list(STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
        "fill_color": 0,
    }
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    split = {"save_as_external_data": True, "location": "model.onnx_data", "size_threshold": 64}
    options = split if external else {}
    save_model(_visual_graph(w_visual), folder / "visual" / "model.onnx", **options)
    save_model(_textual_graph(table), folder / "textual" / "model.onnx", **options)
    (folder / "textual" / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab, merges)))
    (folder / "textual" / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": END, "model_max_length": CONTEXT, "do_lower_case": True})
    )
    return folder


def write_onnx_model(folder: Path, seed: int = 1, name: str = "model.onnx") -> Path:
    """A single-tower model: conv 3x3 (16 channels) -> ReLU -> global average pool, [n,16,1,1]."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    nodes = [
        helper.make_node(
            "Conv",
            ["input", "w", "b"],
            ["conv"],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["features"]),
    ]
    inits = [
        numpy_helper.from_array(rng.normal(size=(16, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-vision",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 16, 1, 1])],
        inits,
    )
    save_model(_model(graph), folder / name)
    preprocess = {
        "size": SIZE,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "resize_mode": "squash",
    }
    (folder / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    return folder


def _visual_graph(w_visual: np.ndarray) -> object:
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w_visual"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "visual",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        [numpy_helper.from_array(w_visual, "w_visual")],
    )
    return _model(graph)


def _textual_graph(table: np.ndarray) -> object:
    nodes = [
        helper.make_node("Gather", ["token_table", "text"], ["tokens"], axis=0),
        helper.make_node("ReduceSum", ["tokens", "axes"], ["embedding"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "textual",
        [helper.make_tensor_value_info("text", TensorProto.INT32, ["N", CONTEXT])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        [
            numpy_helper.from_array(table, "token_table"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )
    return _model(graph)


def _model(graph: object) -> object:
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 17)])
    model.ir_version = 8
    return model
