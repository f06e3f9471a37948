"""HTTP load: concurrent clients against `picmatch serve` on 127.0.0.1, uploads then id searches.

    python benchmarks/load.py [--clients 50] [--seconds 60] [--images 300] [--library DIR]
                             [--baseline-src OTHER_CHECKOUT/src] [--json out.json]

Builds a library of real photos (scikit-image's, each with cropped, scaled, recoloured and
mirrored copies, like a photo folder with edits) unless `--library` names one, starts the
server as a real process, and runs two phases of `--seconds` each with `--clients` clients in
a loop: "upload" posts a ~16 KB JPEG (multipart, what the web page sends), "id" posts
`{"id": ...}` of an indexed image (no model run). Then reports requests per second, p50/p99
latency, errors (any status other than 200, or a failed request), and the server's resident
memory before and after each phase (and its peak). With `--baseline-src`, the same load first
runs against a server started from that source tree (e.g. a worktree of an older commit), in
the same run, and the table shows both. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from PIL import Image, ImageEnhance, ImageOps

PHOTOS = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry",
    "retina", "rocket", "camera", "coins", "moon", "brick", "grass", "clock", "page",
)  # fmt: skip


@dataclass
class PhaseResult:
    server: str
    phase: str
    clients: int
    seconds: float
    requests: int
    ok: int
    errors: int
    per_second: float
    p50_ms: float
    p99_ms: float
    rss_before_mb: float
    rss_after_mb: float
    rss_peak_mb: float
    failures: list[str]  # up to 5 distinct ones


def build_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` JPEGs: the scikit-image photos, then edited copies (crop, scale, colour, flip)."""
    import numpy as np
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    originals = []
    for name in PHOTOS:
        array = np.asarray(getattr(skimage.data, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        originals.append(Image.fromarray(array).convert("RGB"))
    paths = []
    for i in range(count):
        image = originals[i % len(originals)]
        if i >= len(originals):
            image = _edit(image, rng)
        path = folder / f"{i // 100:02d}" / f"img-{i:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        image.save(path, quality=rng.choice((80, 88, 95)))
        paths.append(path)
    return paths


def _edit(image: Image.Image, rng: random.Random) -> Image.Image:
    w, h = image.size
    left, top = int(w * rng.uniform(0, 0.25)), int(h * rng.uniform(0, 0.25))
    right, bottom = int(w * rng.uniform(0.75, 1)), int(h * rng.uniform(0.75, 1))
    out = image.crop((left, top, right, bottom))
    scale = rng.uniform(0.4, 1.5)
    out = out.resize((max(32, int(out.width * scale)), max(32, int(out.height * scale))))
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.5, 1.5))
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))
    return ImageOps.mirror(out) if rng.random() < 0.3 else out


def query_jpegs(photos: list[Path], count: int = 20) -> list[bytes]:
    """Upload bodies: photos scaled to ~320 px, about 16 KB each."""
    out = []
    for path in photos[:count]:
        with Image.open(path) as image:
            small = image.convert("RGB")
            small.thumbnail((320, 320))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=80)
            out.append(buffer.getvalue())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process, in MB (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return (
        int(fields["VmRSS"].split()[0]) / 1024,
        int(fields["VmHWM"].split()[0]) / 1024,
    )


@contextmanager
def server(library: Path, cache: Path, log: Path, src: Path | None) -> Iterator[tuple[str, int]]:
    """`picmatch serve` on a free port (from `src` when given); yields its URL and pid."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICMATCH_")}
    env.update(PICMATCH_CACHE_DIR=str(cache), PICMATCH_CONFIG=str(log.parent / "none.toml"))
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    command = [sys.executable, "-m", "picmatch.cli", "serve", "--library", str(library)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _client(
    http: httpx.AsyncClient,
    phase: str,
    stop_at: float,
    bodies: list[bytes],
    ids: list[str],
    latencies: list[float],
    failures: list[str],
    rng: random.Random,
) -> None:
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            if phase == "upload":
                files = {"image": ("query.jpg", rng.choice(bodies), "image/jpeg")}
                response = await http.post("/api/search", files=files, data={"k": "10"})
            else:
                response = await http.post("/api/search", json={"id": rng.choice(ids), "k": 10})
            if response.status_code != 200:
                failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                continue
        except httpx.HTTPError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - started)


async def run_phase(
    url: str, phase: str, clients: int, seconds: float, bodies: list[bytes], ids: list[str]
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    failures: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                _client(http, phase, stop_at, bodies, ids, latencies, failures, random.Random(i))
                for i in range(clients)
            )
        )
        elapsed = time.monotonic() - started
    return latencies, failures, elapsed


def measure(
    name: str, library: Path, cache: Path, work: Path, src: Path | None, args: argparse.Namespace
) -> list[PhaseResult]:
    bodies = query_jpegs(sorted(Path(args.images_from).rglob("*.jpg")))
    results = []
    with server(library, cache, work / f"server-{name}.log", src) as (url, pid):
        ids = _ids_from_uploads(url, bodies)
        for phase in args.phases:
            before, _ = rss_mb(pid)
            latencies, failures, elapsed = asyncio.run(
                run_phase(url, phase, args.clients, args.seconds, bodies, ids)
            )
            after, peak = rss_mb(pid)
            results.append(_summary(name, phase, args, latencies, failures, elapsed))
            results[-1].rss_before_mb, results[-1].rss_after_mb = round(before), round(after)
            results[-1].rss_peak_mb = round(peak)
            results[-1].failures = sorted(set(failures))[:5]
            for failure in results[-1].failures:
                print(f"  {name} {phase}: {failure}", file=sys.stderr)
    return results


def _ids_from_uploads(url: str, bodies: list[bytes]) -> list[str]:
    """Indexed ids to search by: the hits of a few uploads."""
    ids: set[str] = set()
    with httpx.Client(base_url=url, timeout=120) as http:
        for body in bodies[:5]:
            response = http.post("/api/search", files={"image": ("q.jpg", body)}, data={"k": "50"})
            response.raise_for_status()
            ids.update(hit["id"] for hit in response.json()["hits"])
    if not ids:
        raise SystemExit("the library is empty: nothing to search by id")
    return sorted(ids)


def _summary(
    name: str,
    phase: str,
    args: argparse.Namespace,
    latencies: list[float],
    failures: list[str],
    elapsed: float,
) -> PhaseResult:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    return PhaseResult(
        server=name,
        phase=phase,
        clients=args.clients,
        seconds=round(elapsed, 1),
        requests=len(latencies) + len(failures),
        ok=len(latencies),
        errors=len(failures),
        per_second=round(len(latencies) / elapsed, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 1) if ordered else float("nan"),
        p99_ms=round(p99 * 1000, 1),
        rss_before_mb=0,
        rss_after_mb=0,
        rss_peak_mb=0,
        failures=[],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=int, default=300, help="library size when built here")
    parser.add_argument("--library", type=Path, help="an indexed library (default: build one)")
    parser.add_argument("--images-from", type=Path, help="JPEG folder for the upload queries")
    parser.add_argument("--cache", type=Path, help="model cache (default: the user's)")
    parser.add_argument("--phases", nargs="+", choices=("upload", "id"), default=["upload", "id"])
    parser.add_argument("--baseline-src", type=Path, help="a source tree to compare against")
    parser.add_argument("--json", type=Path, default=Path("load.json"))
    args = parser.parse_args()
    cache = args.cache or _default_cache()
    with tempfile.TemporaryDirectory(prefix="picmatch-load-") as tmp:
        work = Path(tmp)
        if args.library is None:
            build_photos(work / "photos", args.images)
            args.images_from = args.images_from or work / "photos"
        elif args.images_from is None:
            raise SystemExit("with --library, name a JPEG folder for the queries: --images-from")
        results = []
        for name, src in (("baseline", args.baseline_src), ("current", None)):
            if name == "baseline" and src is None:
                continue
            library = args.library
            if library is None:  # each version indexes its own: library formats change
                library = work / f"library-{name}"
                index_with(src, library, work / "photos", cache)
            results += measure(name, library, cache, work, src, args)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "clients": args.clients,
        "seconds": args.seconds,
        "baseline_src": str(args.baseline_src) if args.baseline_src else None,
        "results": [asdict(r) for r in results],
    }
    args.json.write_text(json.dumps(report, indent=2))
    print_table(results)
    print(f"wrote {args.json}")


def _default_cache() -> Path:
    from picmatch.config import default_cache_dir

    return default_cache_dir()


def index_with(src: Path | None, library: Path, photos: Path, cache: Path) -> None:
    """`picmatch index` run from `src` (default: the installed picmatch)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICMATCH_")}
    env.update(PICMATCH_CACHE_DIR=str(cache), PICMATCH_CONFIG=str(library.parent / "none.toml"))
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    command = [sys.executable, "-m", "picmatch.cli", "index", str(photos), "-q"]
    subprocess.run(
        [*command, "--library", str(library)], env=env, check=True, stdout=subprocess.DEVNULL
    )


def print_table(results: list[PhaseResult]) -> None:
    header = (
        f"{'server':<9} {'phase':<7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'ok':>6} "
        f"{'errors':>6} {'RSS MB before/after/peak':>25}"
    )
    print(header)
    for r in results:
        memory = f"{r.rss_before_mb:.0f}/{r.rss_after_mb:.0f}/{r.rss_peak_mb:.0f}"
        print(
            f"{r.server:<9} {r.phase:<7} {r.per_second:>7.1f} {r.p50_ms:>8.0f} {r.p99_ms:>8.0f} "
            f"{r.ok:>6} {r.errors:>6} {memory:>25}"
        )


if __name__ == "__main__":
    main()
