"""The peer duplicate finders for ``benchmarks/dupes_quality.py``, each where it is installed.

* imagededup (PyPI ``imagededup``): PHash and DHash, ``find_duplicates`` swept over
  ``max_distance_threshold``. Only its hashing modules are loaded (its package ``__init__``
  files import torch for the CNN method, which this benchmark does not need), so
  ``pip install --no-deps imagededup PyWavelets tqdm`` is enough.
* czkawka (PyPI ``czkawka``, the Python binding of the Rust tool): ``find_similar`` swept over
  the similarity level (Hamming bits of its gradient hash).
* difPy (PyPI ``difPy``): ``search`` swept over its MSE similarity, any dimensions.

A peer that is not installed is left out and said so. Importable helper; not a test module.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Pair = tuple[str, str]


@dataclass
class PeerRun:
    name: str
    knob: str
    settings: list[Any]
    default: Any
    predict: Callable[[Any, Any], set[Pair]]  # (folder, setting) -> predicted pairs
    seconds: dict[str, float] = field(default_factory=dict)  # per folder: time at default


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def _group_pairs(groups: list[list[str]]) -> set[Pair]:
    return {_pair(a, b) for g in groups for a, b in itertools.combinations(g, 2)}


def imagededup_runs(folders: dict[str, Any], root: Path) -> list[PeerRun] | None:
    spec = importlib.util.find_spec("imagededup")
    if spec is None or spec.origin is None:
        print("imagededup: not installed, left out")
        return None
    base = Path(spec.origin).parent
    for sub in ("utils", "methods"):  # package inits that import torch: skip them
        name = f"imagededup.{sub}"
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(base / sub)]
            sys.modules[name] = module
    from imagededup.methods.hashing import DHash, PHash

    runs = []
    for cls in (PHash, DHash):
        hasher = cls(verbose=False)
        encodings: dict[str, dict[str, str]] = {}
        seconds: dict[str, float] = {}
        for name in folders:
            started = time.perf_counter()
            encodings[name] = hasher.encode_images(
                image_dir=root / name, recursive=True, num_enc_workers=0
            )
            seconds[name] = time.perf_counter() - started

        def predict(folder: Any, threshold: int, h: Any = hasher, e: Any = encodings) -> set[Pair]:
            found = h.find_duplicates(
                encoding_map=e[folder.name],
                max_distance_threshold=threshold,
                num_enc_workers=0,
                num_dist_workers=0,
            )
            base_dir = root / folder.name
            return {
                _pair(str(base_dir / a), str(base_dir / b)) for a, bs in found.items() for b in bs
            }

        name = f"imagededup {cls.__name__}"
        runs.append(
            PeerRun(name, "max_distance_threshold", list(range(0, 25)), 10, predict, seconds)
        )
    return runs


def czkawka_runs(folders: dict[str, Any], root: Path) -> list[PeerRun] | None:
    try:
        from czkawka import ImageSimilarity
    except ImportError:
        print("czkawka: not installed, left out")
        return None
    cache: dict[tuple[str, int], set[Pair]] = {}
    seconds: dict[str, float] = {}

    def predict(folder: Any, level: int) -> set[Pair]:
        key = (folder.name, level)
        if key not in cache:
            finder = ImageSimilarity()
            finder.set_directories([root / folder.name])
            finder.set_similarity(level)
            started = time.perf_counter()
            groups = finder.find_similar()
            if level == 10:
                seconds[folder.name] = time.perf_counter() - started
            cache[key] = _group_pairs([[str(p) for p in g] for g in groups])
        return cache[key]

    for name in folders:  # the default level's timing, measured for every folder
        predict(types.SimpleNamespace(name=name), 10)
    return [PeerRun("czkawka", "similarity", list(range(0, 41, 2)), 10, predict, seconds)]


def difpy_runs(folders: dict[str, Any], root: Path) -> list[PeerRun] | None:
    try:
        import difPy
    except ImportError:
        print("difPy: not installed, left out")
        return None
    built: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    cache: dict[tuple[str, float], set[Pair]] = {}

    def predict(folder: Any, similarity: float) -> set[Pair]:
        key = (folder.name, similarity)
        if key in cache:
            return cache[key]
        if folder.name not in built:
            started = time.perf_counter()
            built[folder.name] = difPy.build(str(root / folder.name), show_progress=False)
            seconds[folder.name] = time.perf_counter() - started
        found = difPy.search(
            built[folder.name], similarity=similarity, same_dim=False, show_progress=False
        )
        groups = [[str(k)] + [str(m[0]) for m in v] for k, v in found.result.items()]
        cache[key] = _group_pairs(groups)
        return cache[key]

    settings = [0.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0]
    return [PeerRun("difPy", "similarity (MSE)", settings, 0.0, predict, seconds)]


PEERS = (imagededup_runs, czkawka_runs, difpy_runs)
