"""Build the demo folder of `make demo`: photos bundled with scikit-image plus edited copies.

    python scripts/build_demo.py demo/images

writes `demo/images/<photo>/<photo>.jpg` with a few edited copies beside each original, and
`demo/queries/<photo>-edited.jpg`: an edit that is not in the index, to search with.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from picmatch.eval.transforms import TRANSFORMS, edit_rng

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
          "retina", "camera", "coins", "moon", "brick", "grass", "clock", "page")  # fmt: skip
COPIES = ("crop70", "hflip", "jpeg30", "text", "color_jitter")
QUERY_EDIT = "combo"


def load_photo(name: str) -> Image.Image:
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    return Image.fromarray(array).convert("RGB")


def build(images: Path, queries: Path) -> int:
    count = 0
    queries.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        original = load_photo(name)
        folder = images / name
        folder.mkdir(parents=True, exist_ok=True)
        original.save(folder / f"{name}.jpg", quality=92)
        for edit in COPIES:
            copy = TRANSFORMS[edit](original, edit_rng("demo", name, edit))
            copy.save(folder / f"{name}_{edit}.jpg", quality=90)
        edited = TRANSFORMS[QUERY_EDIT](original, edit_rng("demo-query", name))
        edited.save(queries / f"{name}-edited.jpg", quality=90)
        count += 1 + len(COPIES)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder to write the demo images to")
    args = parser.parse_args()
    queries = args.images.parent / "queries"
    count = build(args.images, queries)
    print(f"demo: {count} images in {args.images}, queries in {queries}")


if __name__ == "__main__":
    main()
