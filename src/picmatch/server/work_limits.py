"""Bounded parallelism for the blocking work of requests, off the event loop.

Each kind of blocking work runs in worker threads, behind its own limiter, so one kind cannot
take every thread from the others:
- `model`: decoding an upload and running the model on it, about one per CPU (more would only
  fight over the same cores, and each one holds its decoded pixels in memory);
- `store`: store lookups (id searches, image info, library stats), up to 16 at a time (the
  store serialises its own queries; a few more threads than CPUs overlap the rest of the work);
- `files`: thumbnails and file checks.
Across uploads and thumbnails, `large_decodes` lets only one image far above a photo's size be
decoded at a time (see decode_gate.py), so parallel requests do not multiply peak memory.
A queue of slow uploads therefore never delays an id search, a thumbnail or /api/health.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread

from picmatch._sys import available_cpus
from picmatch.server.decode_gate import DecodeGate

T = TypeVar("T")

STORE_THREADS = 16
FILE_THREADS = 8


@dataclass(frozen=True)
class WorkLimits:
    model: anyio.CapacityLimiter
    store: anyio.CapacityLimiter
    files: anyio.CapacityLimiter
    large_decodes: DecodeGate

    @classmethod
    def for_this_machine(cls, max_pixels: int) -> WorkLimits:
        """Built inside the running event loop (the app's lifespan)."""
        return cls(
            model=anyio.CapacityLimiter(max(1, available_cpus())),
            store=anyio.CapacityLimiter(STORE_THREADS),
            files=anyio.CapacityLimiter(FILE_THREADS),
            large_decodes=DecodeGate.for_cap(max_pixels),
        )


async def run_limited(limiter: anyio.CapacityLimiter, func: Callable[..., T], *args: object) -> T:
    """`func(*args)` in a worker thread, once `limiter` has room."""
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
