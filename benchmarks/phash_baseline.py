"""The protocol's pHash baseline: 64-bit perceptual hashes compared by Hamming distance.

``imagehash.phash(image, hash_size=8)`` (grey 32x32 DCT, low 8x8 block against its median)
gives 64 bits per image, packed into one ``uint64``. A search returns every indexed id in
order of Hamming distance with ``score = -distance`` (higher = more similar). **Ties are
broken by index order**: among equal distances the image added first comes first (a
stable sort), so results are deterministic and do not favour the true original.

Importable helper for ``benchmarks/``; not a test module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image

HASH_BITS = 64


def phash64(image: Image.Image) -> int:
    """The 64-bit pHash of an image as an unsigned integer (row-major bits, MSB first)."""
    bits = np.asarray(imagehash.phash(image, hash_size=8).hash, dtype=bool).reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


@dataclass(frozen=True)
class PhashHits:
    """One query's ranking: ids best first, scores = -Hamming distance (0 = same hash)."""

    ids: tuple[str, ...]
    scores: tuple[float, ...]


@dataclass
class PhashIndex:
    """An in-memory list of (id, hash); search is a brute-force Hamming scan."""

    ids: list[str] = field(default_factory=list)
    _hashes: list[int] = field(default_factory=list)

    def add(self, item_id: str, image: Image.Image) -> None:
        self.ids.append(item_id)
        self._hashes.append(phash64(image))

    def add_many(self, items: Iterable[tuple[str, Image.Image]]) -> None:
        for item_id, image in items:
            self.add(item_id, image)

    def __len__(self) -> int:
        return len(self.ids)

    def distances(self, image: Image.Image) -> npt.NDArray[np.int64]:
        """Hamming distance from the image's hash to every indexed hash, in index order."""
        table = np.asarray(self._hashes, dtype=np.uint64)
        xor = np.bitwise_xor(table, np.uint64(phash64(image)))
        return np.bitwise_count(xor).astype(np.int64)

    def search(self, image: Image.Image, k: int | None = None) -> PhashHits:
        """The ``k`` nearest ids (all when ``k`` is None); ties keep index order."""
        distances = self.distances(image)
        order = np.argsort(distances, kind="stable")[:k]
        return PhashHits(
            ids=tuple(self.ids[i] for i in order),
            scores=tuple(float(-int(distances[i])) for i in order),
        )

    def search_many(self, images: Sequence[Image.Image], k: int | None = None) -> list[PhashHits]:
        return [self.search(image, k) for image in images]
