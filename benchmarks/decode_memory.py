"""Peak memory of decoding one near-cap image for the model: bounded decode vs whole-image decode.

    python benchmarks/decode_memory.py [--side 13377] [--out benchmarks/results]

The images: PNGs of side x side pixels (13377^2 = 179 MP, just under picmatch's default cap) in
modes L, P with transparency, RGB and RGBA, mostly flat with a few rectangles, so the files are
small (the L one is ~200 KB, like the hostile test's) and the cost is all in decoding.

Each case runs in a fresh process that imports picmatch and Pillow, decodes once and reports its
peak RSS (``ru_maxrss``); an idle process with the same imports gives the base, so "extra" is
the decode's own cost. Measured side by side:
- whole: the whole image converted to RGB, then resized to the model input (what picmatch did
  before; it is still what `decode_image` does without `min_side`);
- bounded: `load_for_model`, which converts and box-reduces a strip of rows at a time.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

MODES = ("L", "P", "RGB", "RGBA")

_CHILD = """
import json, resource, sys, time
from picmatch.images.decode import _decode_rgb, fit_to_input, load_for_model, DEFAULT_MAX_PIXELS
from picmatch.models.base import Preprocess
pre = Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
how, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
if how == "whole":
    decoded = _decode_rgb(path, max_pixels=DEFAULT_MAX_PIXELS, min_side=None)
    fit_to_input(decoded.image, pre)
elif how == "bounded":
    load_for_model(path, pre)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak, "seconds": seconds}))
"""


def make_png(folder: Path, mode: str, side: int) -> Path:
    path = folder / f"big_{mode}_{side}.png"
    if path.exists():
        return path
    background: int | tuple[int, ...] = (
        0 if mode in ("L", "P") else (200, 180, 160, 255)[: len(mode)]
    )
    img = Image.new(mode, (side, side), background)
    draw = ImageDraw.Draw(img)
    for i in range(20):
        x, y = (i * 613) % side, (i * 1231) % side
        grey = (i * 12) % 255
        colour = (grey, (i * 90) % 255, (i * 30) % 255, 128 + i)[: len(mode)]
        draw.rectangle(
            (x, y, x + side // 9, y + side // 15), fill=grey if len(mode) == 1 else colour
        )
    if mode == "P":
        img.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
        img.info["transparency"] = 0
    img.save(path, compress_level=9)
    return path


def measure(how: str, path: Path) -> dict[str, float]:
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, how, str(path)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    result: dict[str, float] = json.loads(run.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=13377)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="picmatch-decode-mem-") as tmp:
        base = measure("idle", Path(tmp))["peak"]
        for mode in MODES:
            path = make_png(Path(tmp), mode, args.side)
            whole, bounded = measure("whole", path), measure("bounded", path)
            rows.append(
                {
                    "mode": mode,
                    "file_kb": round(path.stat().st_size / 1024),
                    "whole_peak_mb": round(whole["peak"] / 1e6),
                    "bounded_peak_mb": round(bounded["peak"] / 1e6),
                    "whole_extra_mb": round((whole["peak"] - base) / 1e6),
                    "bounded_extra_mb": round((bounded["peak"] - base) / 1e6),
                    "whole_s": round(whole["seconds"], 2),
                    "bounded_s": round(bounded["seconds"], 2),
                }
            )
    print(f"{args.side}x{args.side} PNG to a 224x224 model input; idle process {base / 1e6:.0f} MB")
    header = f"{'mode':<5} {'file':>7} {'peak whole':>11} {'bounded':>8}"
    print(f"{header} {'extra MB':>13} {'seconds':>12}")
    for r in rows:
        peaks = f"{r['whole_peak_mb']:>8} MB {r['bounded_peak_mb']:>5} MB"
        extra = f"{r['whole_extra_mb']:>5} -> {r['bounded_extra_mb']:<5}"
        seconds = f"{r['whole_s']:>5} -> {r['bounded_s']}"
        print(f"{r['mode']:<5} {r['file_kb']:>5}KB {peaks} {extra} {seconds}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "decode_memory",
        "side": args.side,
        "idle_mb": round(base / 1e6),
        "machine": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "rows": rows,
    }
    (args.out / "decode_memory.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
