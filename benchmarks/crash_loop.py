"""Crash safety: SIGKILL `picmatch index` at random moments, re-run, and compare with a clean run.

    python benchmarks/crash_loop.py [--images 500] [--kills 20] [--min 0.2] [--max 4] [--seed 0]
                                    [--out benchmarks/results]

A folder of `--images` distinct 640x480 JPEGs is indexed by a `picmatch index` process that is
SIGKILLed after a random delay (uniform in [--min, --max] seconds), `--kills` times. Before each
run but the first, the folder changes the way a real one does: 25 new files, 8 rewritten, 5
deleted, 8 renamed or moved to another folder; so every run has work to do. Each kill checks that
no process the killed run started is still alive 15 s later (decode workers must die with it).
After a last run to the end, the library is compared with a clean run over the final folder
into a new library: the same records (path, content hash, size, width, height), and the same
top-10 (paths and scores) for 10 fixed queries (edited copies of images, not indexed).

The bounded version (3 kills over 100 images) runs in the tests: tests/e2e/test_crash_loop.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


@dataclass(frozen=True)
class Kill:
    delay_s: float
    records_before: int
    records_after: int
    workers_seen: int  # decode workers the run had started when it was killed
    finished: bool  # the run had ended before the kill
    orphans: int  # processes of the killed run still alive 15 s after the kill

    @property
    def mid_run(self) -> bool:
        return self.workers_seen > 0 and not self.finished


@dataclass(frozen=True)
class Comparison:
    clean_records: int
    crashed_records: int
    missing: int
    extra: int
    differing: int
    queries: int
    identical_queries: int
    max_score_diff: float

    @property
    def same(self) -> bool:
        return (
            self.missing == self.extra == self.differing == 0
            and self.identical_queries == self.queries
        )


def make_images(folder: Path, count: int, seed: int = 0, first: int = 0) -> list[Path]:
    """`count` distinct photo-like JPEGs (smooth colour fields with rectangles), 640x480,
    named img{first}.jpg and up, spread over 10 subfolders."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, first])
    paths = []
    for i in range(first, first + count):
        path = folder / f"d{i % 10}" / f"img{i:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        _photo(rng).save(path, quality=90)
        paths.append(path)
    return paths


def _photo(rng: np.random.Generator) -> Image.Image:
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(small).resize((640, 480), Image.BICUBIC)).copy()
    for _ in range(6):
        x, y = rng.integers(0, 600), rng.integers(0, 440)
        w, h = rng.integers(20, 200), rng.integers(20, 200)
        pixels[y : y + h, x : x + w] = rng.integers(0, 256, size=3)
    return Image.fromarray(pixels)


def change_folder(folder: Path, rng: random.Random, round_no: int) -> None:
    """One round of a real folder's life: 25 added, 8 rewritten, 5 deleted, 8 renamed/moved."""
    make_images(folder, 25, seed=rng.randrange(1 << 30), first=100_000 * (round_no + 1))
    files = sorted(folder.rglob("*.jpg"))
    picked = rng.sample(files, 21)
    noise = np.random.default_rng(rng.randrange(1 << 30))
    for path in picked[:8]:
        _photo(noise).save(path, quality=90)
    for path in picked[8:13]:
        path.unlink()
    for i, path in enumerate(picked[13:]):
        path.rename(folder / f"d{rng.randrange(10)}" / f"moved-{round_no}-{i}-{path.name}")


def make_queries(folder: Path, images: list[Path], count: int = 10) -> list[Path]:
    """Edited copies (crop + contrast) of `count` images spread over the set."""
    folder.mkdir(parents=True, exist_ok=True)
    queries = []
    for i in range(count):
        source = Image.open(images[i * len(images) // count]).convert("RGB")
        edited = ImageEnhance.Contrast(source.crop((40, 30, 600, 450))).enhance(1.3)
        path = folder / f"query{i}.jpg"
        edited.save(path, quality=70)
        queries.append(path)
    return queries


def index_command(folder: Path, library: Path, cache: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "picmatch.cli", "index", str(folder), "-q",
            "--library", str(library), "--workers", str(workers)]  # fmt: skip


def run_env(cache: Path, library: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PICMATCH_CACHE_DIR=str(cache), PICMATCH_CONFIG=str(library.parent / "none.toml"))
    return env


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (Linux /proc)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            state = _stat(int(name))
            if state is not None and state[0] != "Z":
                parents[int(name)] = state[1]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (s := _stat(p)) is not None and s[0] != "Z"}


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def count_records(library: Path) -> int:
    import sqlite3

    db_path = library / "store" / "picmatch.db"
    if not db_path.exists():
        return 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(
            int(db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
            for t in tables
            if t.startswith("records_")
        )
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def kill_once(
    command: list[str], env: dict[str, str], library: Path, delay: float,
    at_records: int | None = None,
) -> Kill:  # fmt: skip
    """Start `command`, SIGKILL it after `delay` seconds (or, with `at_records`, once the library
    holds that many records), and check that its children die too."""
    before = count_records(library)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family: set[int] = set()
    deadline = time.monotonic() + (delay if at_records is None else 300)
    started = time.monotonic()
    while time.monotonic() < deadline and proc.poll() is None:
        family |= descendants(proc.pid)
        if at_records is not None and count_records(library) >= at_records:
            break
        time.sleep(0.02)
    family |= descendants(proc.pid)
    finished = proc.poll() is not None
    delay = time.monotonic() - started
    proc.kill()
    proc.wait()
    limit = time.monotonic() + 15
    while alive(family) and time.monotonic() < limit:
        time.sleep(0.1)
    orphans = alive(family)
    for pid in orphans:  # leave nothing behind, whatever the verdict
        os.kill(pid, signal.SIGKILL)
    return Kill(delay, before, count_records(library), len(family), finished, len(orphans))


def crash_loop(
    folder: Path, library: Path, cache: Path, *, kills: int, rng: random.Random,
    low: float, high: float, workers: int = 2, first_at_records: int | None = None,
) -> list[Kill]:  # fmt: skip
    """Kill `kills` runs at random moments, the folder changing before each run but the first
    (the first kill comes once `first_at_records` are stored, where given); then run to the end,
    which must exit 0."""
    command = index_command(folder, library, cache, workers)
    env = run_env(cache, library)
    results = []
    for round_no in range(kills):
        if round_no:
            change_folder(folder, rng, round_no)
        at = first_at_records if round_no == 0 else None
        results.append(kill_once(command, env, library, rng.uniform(low, high), at))
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=3600)
    return results


def library_state(
    library: Path, cache: Path, queries: list[Path]
) -> tuple[dict[str, tuple[str, int, int, int]], list[list[tuple[str, float]]]]:
    """Records (path -> content hash, size, width, height) and each query's top 10."""
    from picmatch import open_library

    with open_library(library, create=False, cache_dir=cache) as lib:
        records = {
            p.path: (p.content_hash, p.size, p.width, p.height)
            for _, p in lib.store.iter_payloads(lib.space)
        }
        tops = [[(h.path, h.score) for h in lib.search(q, k=10)] for q in queries]
    return records, tops


def compare(
    clean: tuple[dict[str, tuple[str, int, int, int]], list[list[tuple[str, float]]]],
    crashed: tuple[dict[str, tuple[str, int, int, int]], list[list[tuple[str, float]]]],
) -> Comparison:
    (a, tops_a), (b, tops_b) = clean, crashed
    same_queries = 0
    max_diff = 0.0
    for top_a, top_b in zip(tops_a, tops_b, strict=True):
        diffs = [abs(x[1] - y[1]) for x, y in zip(top_a, top_b, strict=False)]
        max_diff = max([max_diff, *diffs])
        if [p for p, _ in top_a] == [p for p, _ in top_b] and max(diffs, default=0) < 1e-5:
            same_queries += 1
    return Comparison(
        clean_records=len(a),
        crashed_records=len(b),
        missing=len(a.keys() - b.keys()),
        extra=len(b.keys() - a.keys()),
        differing=sum(1 for k in a.keys() & b.keys() if a[k] != b[k]),
        queries=len(tops_a),
        identical_queries=same_queries,
        max_score_diff=max_diff,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--min", type=float, default=0.2, dest="low")
    parser.add_argument("--max", type=float, default=4.0, dest="high")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/picmatch-crash-loop"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    work: Path = args.work
    for path in (work / "clean", work / "crashed", work / "photos"):
        shutil.rmtree(path, ignore_errors=True)
    images = make_images(work / "photos", args.images, args.seed)
    queries = make_queries(work / "queries", images)
    cache = work / "cache"
    clean_lib, crash_lib = work / "clean", work / "crashed"
    started = time.perf_counter()
    kills = crash_loop(
        work / "photos", crash_lib, cache, kills=args.kills, rng=random.Random(args.seed),
        low=args.low, high=args.high,
    )  # fmt: skip
    crash_s = time.perf_counter() - started
    started = time.perf_counter()
    clean_cmd = index_command(work / "photos", clean_lib, cache, 2)
    subprocess.run(clean_cmd, env=run_env(cache, clean_lib), check=True, capture_output=True)
    clean_s = time.perf_counter() - started
    result = compare(
        library_state(clean_lib, cache, queries), library_state(crash_lib, cache, queries)
    )

    print(f"{'kill':>4} {'after s':>8} {'records':>13} {'workers':>8} {'state':>9} {'orphans':>8}")
    for i, k in enumerate(kills, 1):
        records = f"{k.records_before} -> {k.records_after}"
        state = "finished" if k.finished else "mid-run" if k.mid_run else "starting"
        print(
            f"{i:>4} {k.delay_s:>8.2f} {records:>13} {k.workers_seen:>8} {state:>9} {k.orphans:>8}"
        )
    mid = sum(k.mid_run for k in kills)
    orphans = sum(k.orphans for k in kills)
    print(f"{len(kills)} kills, {mid} mid-run (decode workers up), {orphans} orphan processes")
    print(
        f"final {result.crashed_records} records vs clean {result.clean_records}: "
        f"{result.missing} missing, {result.extra} extra, {result.differing} differing; "
        f"{result.identical_queries}/{result.queries} queries identical "
        f"(max score diff {result.max_score_diff:.2e}); kill loop + final run {crash_s:.1f} s, "
        f"clean run {clean_s:.1f} s"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "crash_loop",
        "images": args.images,
        "machine": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "kills": [asdict(k) for k in kills],
        "mid_run_kills": mid,
        "orphans": orphans,
        "comparison": asdict(result),
        "same_as_clean": result.same,
        "clean_s": clean_s,
        "crash_loop_s": crash_s,
    }
    (args.out / "crash_loop.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
