"""Peak server memory for images just under the pixel cap: uploads and cold thumbnails.

    python benchmarks/big_images.py [--side 13377] [--parallel 4] [--baseline-src OTHER/src]
                                   [--json out.json]

Writes one `side` x `side` PNG (13377^2 = 178.9 megapixels, just under the default cap of
178,956,970; a small file, as a decompression bomb would be), indexes it, starts the server as a
real process, and measures the server's peak resident memory (VmHWM, reset between steps) above
its resident memory before each step, for: one upload, `--parallel` uploads one after another
and at once, one cold thumbnail, and the three thumbnail sizes requested cold at once. With
`--baseline-src`, the same runs first against a server started from that source tree. Prints a
table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import _default_cache, index_with, rss_mb, server

THUMBNAIL_SIZES = (128, 256, 512)


def write_big_png(path: Path, side: int) -> None:
    """Flat colour blocks: a small file, like a bomb, but a real image."""
    small = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(small).resize((side, side), Image.Resampling.NEAREST).save(
        path, "PNG", compress_level=1
    )


def measure(name: str, library: Path, png: Path, cache: Path, work_dir: Path, src: Path | None,
            parallel: int) -> list[dict[str, object]]:  # fmt: skip
    """Each step on a freshly started server (model warm, thumbnails cold)."""
    body = png.read_bytes()
    with httpx.Client(timeout=600) as http:

        def upload(url: str, found: str) -> int:
            files = {"image": ("big.png", body, "image/png")}
            return http.post(f"{url}/api/search", files=files, data={"k": "1"}).status_code

        def thumbnail(size: int) -> Callable[[str, str], int]:
            return lambda url, found: (
                http.get(f"{url}/api/images/{found}/thumbnail?size={size}").status_code
            )

        def one_by_one(url: str, found: str) -> list[int]:
            return [upload(url, found) for _ in range(parallel)]

        steps: list[tuple[str, list[Callable[[str, str], object]]]] = [
            ("1 upload", [upload]),
            (f"{parallel} uploads one by one", [one_by_one]),
            (f"{parallel} uploads at once", [upload] * parallel),
            ("1 cold thumbnail", [thumbnail(256)]),
            ("3 cold thumbnails at once", [thumbnail(s) for s in THUMBNAIL_SIZES]),
        ]
        return [_step(name, label, work, library, png, cache, work_dir, src, http)
                for label, work in steps]  # fmt: skip


def _step(name: str, label: str, work: list[Callable[[str, str], object]], library: Path,
          png: Path, cache: Path, work_dir: Path, src: Path | None,
          http: httpx.Client) -> dict[str, object]:  # fmt: skip
    shutil.rmtree(library / "thumbnails", ignore_errors=True)
    with server(library, cache, work_dir / f"server-{name}.log", src) as (url, pid):
        response = http.post(f"{url}/api/search", json={"path": str(png), "k": 1})
        response.raise_for_status()
        found = response.json()["hits"][0]["id"]
        before = rss_mb(pid)[0]
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak to the current RSS
        started = time.perf_counter()
        with ThreadPoolExecutor(len(work)) as pool:
            statuses = list(pool.map(lambda f: f(url, found), work))
        seconds = time.perf_counter() - started
        peak = rss_mb(pid)[1]
    print(f"  {name}: {label}: {before:.0f} -> peak {peak:.0f} MB, {seconds:.1f} s {statuses}")
    return {"server": name, "step": label, "rss_before_mb": round(before),
            "rss_peak_mb": round(peak), "peak_above_mb": round(peak - before),
            "seconds": round(seconds, 2), "statuses": statuses}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=13377)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--cache", type=Path, help="model cache (default: the user's)")
    parser.add_argument("--baseline-src", type=Path, help="a source tree to compare against")
    parser.add_argument("--json", type=Path, default=Path("big_images.json"))
    args = parser.parse_args()
    cache = args.cache or _default_cache()
    with tempfile.TemporaryDirectory(prefix="picmatch-big-") as tmp:
        work = Path(tmp)
        (work / "photos").mkdir()
        png = work / "photos" / "big.png"
        write_big_png(png, args.side)
        rows = []
        for name, src in (("baseline", args.baseline_src), ("current", None)):
            if name == "baseline" and src is None:
                continue
            library = work / f"library-{name}"  # each version indexes its own: formats change
            index_with(src, library, work / "photos", cache)
            rows += measure(name, library, png, cache, work, src, args.parallel)
    args.json.write_text(json.dumps({"side": args.side, "cpus": os.cpu_count(), "rows": rows}))
    print(f"{'server':<9} {'step':<26} {'RSS MB before':>14} {'peak':>6} {'above':>6} {'s':>6}")
    for row in rows:
        print(f"{row['server']:<9} {row['step']:<26} {row['rss_before_mb']:>14} "
              f"{row['rss_peak_mb']:>6} {row['peak_above_mb']:>6} {row['seconds']:>6}")  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
