"""Map page speed in headless Chromium: load time and frame time while panning, 10k vs 100k.

    python benchmarks/map_page.py [--sizes 10000 100000] [--out map_page.json]

Writes an exported map (the layout `picmatch map --html` writes) of N points in 60 clusters, with
real sprite sheets of generated tiles, serves it over HTTP on 127.0.0.1 and opens it in the
system Chromium (playwright, no downloaded browser; software rendering, --disable-gpu). Load:
navigation start to the first frame drawn. Panning: the page pans a few pixels per animation
frame (a circle of 200 px radius), 240 frames each at the whole-map zoom (every image a colour
square) and zoomed in 12x (sprite tiles); draw = time in the page's draw(), frame = time between
animation frames (16.7 ms = 60 frames/s), in view = points inside the visible area.
Prints a table (medians, p95), writes JSON. The 10k run is the baseline.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "picmatch" / "server" / "static"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CELL, PER_SIDE = 32, 32
FRAMES = 240


def write_export(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.random((60, 2)) * 0.8 + 0.1
    colours = rng.integers(30, 256, (60, 3))
    cluster = rng.integers(0, 60, n)
    xy = np.clip(centres[cluster] + rng.normal(0, 0.03, (n, 2)), 0, 1)
    (folder / "static").mkdir(parents=True)
    (folder / "sheets").mkdir()
    per_sheet = PER_SIDE * PER_SIDE
    sheets = (n + per_sheet - 1) // per_sheet
    for k in range(sheets):
        tiles = np.zeros((PER_SIDE, PER_SIDE, CELL, CELL, 3), np.uint8)
        for slot in range(min(per_sheet, n - k * per_sheet)):
            c = colours[cluster[k * per_sheet + slot]]
            tiles[slot // PER_SIDE, slot % PER_SIDE] = c
            tiles[slot // PER_SIDE, slot % PER_SIDE, 8:24, 8:24] = 255 - c
        image = tiles.transpose(0, 2, 1, 3, 4).reshape(PER_SIDE * CELL, PER_SIDE * CELL, 3)
        Image.fromarray(image).save(folder / "sheets" / f"sheet-{k:04d}.jpg", quality=80)
    rgb = colours[cluster]
    doc = {
        "version": 1, "model": "synthetic", "count": n, "cell": CELL, "per_side": PER_SIDE,
        "sheets": sheets, "cells": list(range(n)),
        "x": [round(v, 5) for v in xy[:, 0].tolist()],
        "y": [round(v, 5) for v in xy[:, 1].tolist()],
        "colours": ((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).tolist(),
        "folders": [f"folder-{k}" for k in range(20)], "folder": (cluster % 20).tolist(),
        "names": [f"image-{i:06d}.jpg" for i in range(n)],
    }  # fmt: skip
    (folder / "static" / "map-data.js").write_text(f"window.PICMATCH_MAP = {json.dumps(doc)};\n")
    for name in ("map.js", "map.css"):
        (folder / "static" / name).write_bytes((STATIC / name).read_bytes())
    script = '<script src="static/map.js" defer></script>'
    data = '<script src="static/map-data.js" defer></script>'
    page = (STATIC / "map.html").read_text().replace(script, data + script)
    (folder / "index.html").write_text(page)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def measure(url: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            deadline = time.monotonic() + 120
            while not page.evaluate("window.picmatchMap && window.picmatchMap.ready"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the map did not load")
                time.sleep(0.05)
            load_ms = page.evaluate("picmatchMap.firstDrawAt")
            whole = page.evaluate(f"picmatchMap.measurePan({FRAMES}, 200)")
            page.evaluate("picmatchMap.zoomTo(12)")
            page.wait_for_timeout(1500)  # let the visible sheets arrive
            zoomed = page.evaluate(f"picmatchMap.measurePan({FRAMES}, 200)")
        finally:
            browser.close()
    return {"load_ms": round(load_ms, 1), "whole": stats(whole), "zoomed": stats(zoomed)}


def stats(run: dict[str, list[float]]) -> dict[str, float]:
    draws, gaps = np.array(run["draws"]), np.array(run["gaps"])
    return {
        "in_view_p50": float(np.median(run["drawn"])),
        "draw_p50": round(float(np.median(draws)), 2),
        "draw_p95": round(float(np.percentile(draws, 95)), 2),
        "frame_p50": round(float(np.median(gaps)), 2),
        "frame_p95": round(float(np.percentile(gaps, 95)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path("map_page.json"))
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="map-page-") as tmp:
        for n in args.sizes:
            folder = Path(tmp) / str(n)
            write_export(folder, n)
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                results[n] = measure(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            finally:
                server.shutdown()
            print(n, results[n], flush=True)
    print(
        "| N | load ms | whole map: in view, draw p50 / p95 | frame p50 / p95 "
        "| zoomed 12x: in view, draw p50 / p95 | frame p50 / p95 |\n|---|---|---|---|---|---|"
    )
    for n, r in results.items():
        w, z = r["whole"], r["zoomed"]
        print(
            f"| {n:,} | {r['load_ms']} | {w['in_view_p50']:.0f}, {w['draw_p50']} / {w['draw_p95']} "
            f"| {w['frame_p50']} / {w['frame_p95']} "
            f"| {z['in_view_p50']:.0f}, {z['draw_p50']} / {z['draw_p95']} "
            f"| {z['frame_p50']} / {z['frame_p95']} |"
        )
    args.out.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
