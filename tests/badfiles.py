"""A corpus of bad and odd input mixed with good images, for tests that must never break.

    corpus = make_corpus(tmp_path / "corpus")     # files under corpus.root, queries beside it
    ... index corpus.root, with corpus.mutate() called once the scan is done ...
    corpus.good      # Entry(kind, path, query): indexed, and found by searching with `query`
    corpus.bad       # Entry(kind, path, reasons): skipped and listed with one of `reasons`
    corpus.kinds()   # every kind made (over 50)

    uploads = make_bad_uploads(tmp_path / "up")   # kind -> a regular bad file, to send as a query

Kinds: truncated files of every format, declared-size bombs of every format, zero-byte, random
bytes, HTML, SVG and EPS under image names, a huge zTXt chunk, odd modes (CMYK, 16-bit, palette
with transparency, LA, RGBA, 1-bit), odd EXIF (orientation 0, 9 and 65535, a 60 KB block,
garbage), animations, wrong extensions, 1x1 and 1x10000 images, odd names (newline, leading dash,
quotes, emoji, 250 bytes, bytes that are not UTF-8), a file padded to 256 MiB, FIFOs, links to
/dev/null, /dev/zero and /dev/urandom, broken and self links, a folder symlink loop, a folder named
like an image, an unreadable file (when not root), and files that vanish, turn into a FIFO, get
corrupted or get rewritten between the scan and the decode (`Corpus.mutate`).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.imagegen import synthetic

CORRUPT = ("truncated or corrupt image data",)
NOT_IMAGE = ("not an image or unsupported format",)
TOO_LARGE = ("megapixels, above the limit",)
PIPE = ("not a regular file (named pipe)",)
DEVICE = ("not a regular file (character device)",)
HUGE_BYTES = 256 << 20


@dataclass(frozen=True)
class Entry:
    kind: str
    path: Path
    reasons: tuple[str, ...] = ()  # bad: the reason listed contains one of these
    query: Path | None = None  # good: a copy outside the corpus to search with


@dataclass
class Corpus:
    root: Path
    queries: Path
    good: list[Entry] = field(default_factory=list)
    bad: list[Entry] = field(default_factory=list)
    _mutations: list[Callable[[], None]] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return {e.kind for e in self.good + self.bad}

    def mutate(self) -> None:
        """The changes made between the scan and the decode (call it once, after the scan)."""
        for change in self._mutations:
            change()
        self._mutations.clear()

    def add_good(
        self, kind: str, path: Path, image: Image.Image | None = None, **save: object
    ) -> None:
        """Save `image` (or keep the file already at `path`) and a query copy of its bytes."""
        if image is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, **save)  # type: ignore[arg-type]
        query = self.queries / f"{len(self.good):03d}-{kind}{_suffix(path)}"
        shutil.copyfile(path, query)
        self.good.append(Entry(kind, path, query=query))

    def add_bad(
        self, kind: str, path: Path, reasons: tuple[str, ...], data: bytes | None = None
    ) -> None:
        if data is not None:
            path.write_bytes(data)
        self.bad.append(Entry(kind, path, reasons=reasons))


def make_corpus(folder: Path, *, huge_bytes: int = HUGE_BYTES) -> Corpus:
    """Write the corpus under ``folder / "corpus"`` and its queries under ``folder / "queries"``."""
    corpus = Corpus(folder / "corpus", folder / "queries")
    corpus.root.mkdir(parents=True)
    corpus.queries.mkdir(parents=True)
    seeds = iter(range(7000, 8000))
    _good_formats(corpus, seeds)
    _odd_modes(corpus, seeds)
    _odd_exif(corpus, seeds)
    _odd_shapes_and_names(corpus, seeds, huge_bytes)
    (corpus.root / "bad").mkdir()
    for kind, (name, data, reasons) in _bad_files(next(seeds)).items():
        corpus.add_bad(kind, corpus.root / "bad" / name, reasons, data)
    _special_files(corpus, seeds)
    _during_run(corpus, seeds)
    return corpus


def make_bad_uploads(folder: Path) -> dict[str, Path]:
    """Regular files that are not valid images (truncated, bombs, empty, not images): kind -> path.

    Every one must get a clear error as a query, on the command line and as an HTTP upload.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, (name, data, _) in _bad_files(7999).items():
        (folder / name).write_bytes(data)
        paths[kind] = folder / name
    return paths


# good and odd-but-valid images


def _good_formats(corpus: Corpus, seeds: Iterator[int]) -> None:
    it = seeds
    root = corpus.root / "formats"
    for kind, name, save in (
        ("jpeg", "photo.jpg", {"quality": 90}),
        ("png", "photo.png", {}),
        ("gif", "photo.gif", {}),
        ("webp", "photo.webp", {"quality": 90}),
        ("tiff", "photo.tif", {}),
        ("bmp", "photo.bmp", {}),
    ):
        corpus.add_good(kind, root / name, synthetic(next(it)), **save)
    for kind, fmt in _heif_formats():
        corpus.add_good(kind, root / f"photo.{kind}", synthetic(next(it)), format=fmt)


def _odd_modes(corpus: Corpus, seeds: Iterator[int]) -> None:
    it = seeds
    root = corpus.root / "modes"
    corpus.add_good("mode-cmyk", root / "cmyk.jpg", synthetic(next(it)).convert("CMYK"))
    grey = np.asarray(synthetic(next(it)).convert("L"), dtype=np.uint16) * 257
    corpus.add_good("mode-i16", root / "grey16.png", Image.fromarray(grey))
    palette = synthetic(next(it)).quantize(32)
    palette.info["transparency"] = 3
    corpus.add_good("mode-p-transparent", root / "palette.png", palette, transparency=3)
    corpus.add_good("mode-la", root / "grey-alpha.png", synthetic(next(it)).convert("LA"))
    rgba = synthetic(next(it)).convert("RGBA")
    rgba.putalpha(synthetic(next(it)).convert("L"))
    corpus.add_good("mode-rgba", root / "alpha.png", rgba)
    corpus.add_good("mode-1bit", root / "bits.png", synthetic(next(it), (640, 480)).convert("1"))
    big = Image.new("L", (4100, 4000), 30)
    big.paste(synthetic(next(it), (2000, 1500)).convert("L"), (900, 1100))
    corpus.add_good("large-16mp-png", root / "large.png", big, compress_level=1)


def _odd_exif(corpus: Corpus, seeds: Iterator[int]) -> None:
    it = seeds
    root = corpus.root / "exif"
    for value in (0, 9, 65535):
        exif = Image.Exif()
        exif[0x0112] = value
        corpus.add_good(
            f"exif-orientation-{value}", root / f"orient{value}.jpg", synthetic(next(it)), exif=exif
        )
    exif = Image.Exif()
    exif[0x9286] = b"ASCII\0\0\0" + bytes(60_000)  # a 60 KB UserComment: near the APP1 limit
    corpus.add_good("exif-huge", root / "huge-exif.jpg", synthetic(next(it)), exif=exif)
    plain = io.BytesIO()
    synthetic(next(it)).save(plain, "JPEG", quality=90)
    junk = b"Exif\0\0" + np.random.default_rng(1).bytes(3000)
    app1 = b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk
    (root / "garbage-exif.jpg").write_bytes(plain.getvalue()[:2] + app1 + plain.getvalue()[2:])
    corpus.add_good("exif-garbage", root / "garbage-exif.jpg")


def _odd_shapes_and_names(corpus: Corpus, seeds: Iterator[int], huge_bytes: int) -> None:
    it = seeds
    root = corpus.root / "odd"
    frames = [synthetic(next(it)) for _ in range(3)]
    root.mkdir(parents=True)
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    corpus.add_good("animated-gif", root / "animated.gif")
    frames = [synthetic(next(it)) for _ in range(3)]  # other frames: not a copy of the GIF
    frames[0].save(root / "animated.webp", save_all=True, append_images=frames[1:], duration=100)
    corpus.add_good("animated-webp", root / "animated.webp")
    corpus.add_good("png-named-jpg", root / "really-a-png.jpg", synthetic(next(it)), format="PNG")
    corpus.add_good("one-pixel", root / "one-pixel.png", Image.new("RGB", (1, 1), (12, 200, 99)))
    strip = synthetic(next(it), (100, 10000)).resize((1, 10000))
    corpus.add_good("one-by-10000", root / "strip.png", strip)
    corpus.add_good("upper-case-suffix", root / "UPPER.JPEG", synthetic(next(it)), format="JPEG")
    for kind, name in (
        ("name-newline", "new\nline.jpg"),
        ("name-leading-dash", "-rf.jpg"),
        ("name-quotes", 'it\'s "quoted".jpg'),
        ("name-emoji", "emoji-\U0001f600.jpg"),
        ("name-250-bytes", "n" * 246 + ".jpg"),
        ("name-not-utf8", os.fsdecode(b"latin1-\xe9t\xe9.jpg")),
    ):
        corpus.add_good(kind, root / "names" / name, synthetic(next(it)), format="JPEG")
    inside = root / "folder.jpg"  # a folder named like an image: its contents are indexed
    corpus.add_good("folder-named-like-an-image", inside / "inside.jpg", synthetic(next(it)))
    corpus.add_good("padded-to-256mib", root / "padded.jpg", synthetic(next(it)), quality=90)
    with (root / "padded.jpg").open("r+b") as file:
        file.truncate(huge_bytes)  # a JPEG followed by zeros, sparse on disk


def _heif_formats() -> list[tuple[str, str]]:
    """(kind, Pillow format) of the HEIF-family formats this machine can write."""
    try:
        import pillow_heif
    except ImportError:
        return []
    pillow_heif.register_heif_opener()
    made = []
    for kind, fmt in (("heic", "HEIF"), ("avif", "AVIF")):
        try:
            Image.new("RGB", (16, 16)).save(io.BytesIO(), format=fmt)
        except (KeyError, OSError, ValueError):
            continue
        made.append((kind, fmt))
    return made


# bad files: (file name, bytes, reasons)


def _bad_files(seed: int) -> dict[str, tuple[str, bytes, tuple[str, ...]]]:
    image = synthetic(seed)
    files: dict[str, tuple[str, bytes, tuple[str, ...]]] = {}
    for kind, suffix, fmt in (
        ("jpeg", "jpg", "JPEG"),
        ("png", "png", "PNG"),
        ("gif", "gif", "GIF"),
        ("webp", "webp", "WEBP"),
        ("tiff", "tif", "TIFF"),
        ("bmp", "bmp", "BMP"),
        *((kind, kind, fmt) for kind, fmt in _heif_formats()),
    ):
        data = _encode(image, fmt)
        files[f"truncated-{kind}"] = (
            f"truncated.{suffix}",
            data[: len(data) * 6 // 10],
            CORRUPT + NOT_IMAGE,
        )
    files.update(
        {
            "bomb-png": ("bomb.png", _png_bomb(), TOO_LARGE),
            "bomb-jpeg": ("bomb.jpg", _jpeg_bomb(image), TOO_LARGE),
            "bomb-gif": ("bomb.gif", _gif_bomb(image), TOO_LARGE),
            "bomb-bmp": ("bomb.bmp", _bmp_bomb(image), TOO_LARGE),
            "bomb-tiff": ("bomb.tif", _tiff_bomb(), TOO_LARGE),
            "bomb-webp": ("bomb.webp", _webp_bomb(image), TOO_LARGE),
            "ztxt-bomb": ("ztxt.png", _ztxt_bomb(image), CORRUPT),
            "empty": ("empty.jpg", b"", ("file is empty",)),
            "random-bytes": ("random.png", np.random.default_rng(seed).bytes(5000), NOT_IMAGE),
            "html": ("page.jpg", b"<!doctype html><html><body>hello</body></html>", NOT_IMAGE),
            "svg": (
                "drawing.png",
                b'<svg xmlns="http://www.w3.org/2000/svg" width="9"/>',
                NOT_IMAGE,
            ),
            "eps": ("print.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n", NOT_IMAGE),
        }
    )
    return files


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb() -> bytes:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(100_001 * 3)[:1000])
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _ztxt_bomb(image: Image.Image) -> bytes:
    png = _encode(image, "PNG")
    text = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(200 << 20), 9))
    return png[:33] + text + png[33:]  # right after IHDR


def _jpeg_bomb(image: Image.Image) -> bytes:
    data = bytearray(_encode(image, "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def _gif_bomb(image: Image.Image) -> bytes:
    data = bytearray(_encode(image, "GIF"))
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def _bmp_bomb(image: Image.Image) -> bytes:
    data = bytearray(_encode(image, "BMP"))
    data[18:26] = struct.pack("<ii", 100_000, 100_000)
    return bytes(data)


def _tiff_bomb() -> bytes:
    entries = [(256, 4, 100_000), (257, 4, 100_000), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8), (277, 3, 1), (278, 4, 100_000), (279, 4, 10)]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHII", tag, kind, 1, value)
    return b"II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0"


def _webp_bomb(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.index(b"VP8L") + 9
    bits = int.from_bytes(data[at : at + 4], "little")
    bits = (bits & ~((1 << 28) - 1)) | 16383 | (16383 << 14)  # a 16384 x 16384 canvas
    data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


# special files and files that change during a run


def _special_files(corpus: Corpus, seeds: Iterator[int]) -> None:
    root = corpus.root / "special"
    root.mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.jpg")
        corpus.add_bad("fifo", root / "pipe.jpg", PIPE)
    for device in ("null", "zero", "urandom"):
        if Path(f"/dev/{device}").exists():
            (root / f"dev-{device}.jpg").symlink_to(f"/dev/{device}")
            corpus.add_bad(f"link-to-dev-{device}", root / f"dev-{device}.jpg", DEVICE)
    (root / "broken.jpg").symlink_to(root / "nothing-here.jpg")
    corpus.add_bad("broken-link", root / "broken.jpg", ("broken symbolic link",))
    (root / "self.jpg").symlink_to("self.jpg")
    corpus.add_bad("self-link", root / "self.jpg", ("cannot read", "broken symbolic link"))
    (root / "loop").mkdir()
    (root / "loop" / "up").symlink_to("..")  # a folder symlink loop: the walk must end
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root reads whatever the permissions
        locked = root / "locked.jpg"
        synthetic(next(seeds)).save(locked)
        locked.chmod(0)
        corpus.add_bad("unreadable", locked, ("permission denied",))


def _during_run(corpus: Corpus, seeds: Iterator[int]) -> None:
    it = seeds
    root = corpus.root / "changing"
    root.mkdir()
    for name in ("vanishes.jpg", "turns-into-fifo.jpg", "gets-corrupted.jpg", "gets-rewritten.jpg"):
        synthetic(next(it)).save(root / name)
    new_content = synthetic(next(it), (400, 300))
    corpus.add_bad("vanishes-after-scan", root / "vanishes.jpg", ("file not found",))
    corpus._mutations.append((root / "vanishes.jpg").unlink)
    if hasattr(os, "mkfifo"):
        corpus.add_bad("turns-into-fifo-after-scan", root / "turns-into-fifo.jpg", PIPE)

        def to_fifo() -> None:
            (root / "turns-into-fifo.jpg").unlink()
            os.mkfifo(root / "turns-into-fifo.jpg")

        corpus._mutations.append(to_fifo)
    else:
        (root / "turns-into-fifo.jpg").unlink()
    corpus.add_bad("corrupted-after-scan", root / "gets-corrupted.jpg", NOT_IMAGE + CORRUPT)
    corpus._mutations.append(lambda: (root / "gets-corrupted.jpg").write_bytes(b"\0" * 100))
    query = corpus.queries / "rewritten.jpg"
    new_content.save(query)

    def rewrite() -> None:
        shutil.copyfile(query, root / "gets-rewritten.jpg")

    corpus._mutations.append(rewrite)
    corpus.good.append(Entry("rewritten-after-scan", root / "gets-rewritten.jpg", query=query))


def _suffix(path: Path) -> str:
    return path.suffix if path.suffix else ".img"
