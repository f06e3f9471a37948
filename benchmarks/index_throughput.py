"""Indexing throughput: `picmatch index` vs model-only inference vs a naive pipeline, in one run.

    python benchmarks/index_throughput.py [--images 300] [--naive 40] [--out benchmarks/results]

The photo folder: `--images` JPEGs of 8-12 megapixels made from scikit-image's bundled photos
(a random crop, upscaled with bicubic to a random camera size between 3264x2448 and 4000x3000,
random flip and colour gain, plus Gaussian sensor noise with sigma 4, so the files carry real
photo-like entropy of 2-5 MB; quality 92; every fourth file carries an EXIF orientation tag).

Measured side by side:
- picmatch: the `picmatch index` command in a subprocess on a new library (process start,
  model load, scan, hash, parallel decode and inference included), images/s over the folder;
- model-only: ONNX Runtime on pre-decoded 224x224 tensors at the embedder's batch size;
- naive: sequential full decode + EXIF transpose + resize, then the model one image at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
          "retina", "stereo_motorcycle")  # fmt: skip
SIZES = ((3264, 2448), (3648, 2736), (4000, 3000), (4032, 3024))


def make_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) >= count:
        return existing[:count]
    rng = random.Random(seed)
    sources = []
    for name in PHOTOS:
        data = getattr(skimage.data, name)()
        sources.append(Image.fromarray(np.asarray(data[0] if isinstance(data, tuple) else data)))
    noise = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"photo{i:04d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        src = rng.choice(sources).convert("RGB")
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        size = rng.choice(SIZES)
        big = src.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            big = ImageOps.mirror(big)
        pixels = np.asarray(big, dtype=np.float32) * rng.uniform(0.8, 1.2)
        pixels += noise.normal(0, 4, size=pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        if i % 4 == 0:
            exif[0x0112] = 6
        image.save(path, quality=92, exif=exif)
    return paths


def run_picmatch_index(folder: Path, cache: Path) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ, PICMATCH_LIBRARY=str(Path(tmp) / "lib"), PICMATCH_CACHE_DIR=str(cache)
        )
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "picmatch", "index", str(folder), "-q"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return time.perf_counter() - started, run.stdout.strip()


def model_only(embedder: object, count: int) -> float:
    rng = np.random.default_rng(0)
    tensors = [rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for _ in range(count)]
    embedder.embed_images(tensors[:8])  # type: ignore[attr-defined]  # warm-up
    started = time.perf_counter()
    embedder.embed_images(tensors)  # type: ignore[attr-defined]
    return count / (time.perf_counter() - started)


def naive(embedder: object, paths: list[Path]) -> float:
    from picmatch.images.decode import fit_to_input

    pre = embedder.preprocess  # type: ignore[attr-defined]
    started = time.perf_counter()
    for path in paths:
        image = ImageOps.exif_transpose(Image.open(path).convert("RGB"))
        embedder.embed_images([fit_to_input(image, pre)])  # type: ignore[attr-defined]
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description="indexing throughput benchmark")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--naive", type=int, default=40, help="images for the naive pipeline")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/throughput"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    from picmatch.config import default_cache_dir
    from picmatch.models.registry import load_embedder

    print(f"making {args.images} photos in {args.data} ...", flush=True)
    paths = make_photos(args.data, args.images)
    folder = args.data
    megapixels = [Image.open(p).size[0] * Image.open(p).size[1] / 1e6 for p in paths[:50]]
    mb = [p.stat().st_size / 1e6 for p in paths]
    cache = default_cache_dir() / "models"
    embedder = load_embedder("efficientnet-lite0", cache_dir=cache)
    seconds, summary = run_picmatch_index(folder, default_cache_dir())
    ours = len(paths) / seconds
    model = model_only(embedder, 256)
    base = naive(embedder, paths[: args.naive])
    rows = [
        ("picmatch index (end to end)", ours, 1.0),
        ("model only (ORT, pre-decoded)", model, ours / model),
        ("naive sequential", base, ours / base),
    ]
    print(f"\n{len(paths)} JPEGs, {min(megapixels):.1f}-{max(megapixels):.1f} MP, "
          f"median {np.median(mb):.1f} MB; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"picmatch said: {summary}\n")
    print("| pipeline | images/s | picmatch ÷ this |")
    print("|---|---:|---:|")
    for name, rate, ratio in rows:
        print(f"| {name} | {rate:.1f} | {ratio:.2f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "images": len(paths),
        "picmatch_images_per_s": ours,
        "model_only_images_per_s": model,
        "naive_images_per_s": base,
        "ratio_vs_model_only": ours / model,
        "ratio_vs_naive": ours / base,
        "cpus": os.cpu_count(),
    }
    (args.out / "index_throughput.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
