"""FIFOs, devices and links to /dev/*: never read (no hang), always listed with a reason."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from picmatch import Library
from picmatch.errors import ImageDecodeError
from picmatch.images.decode import decode_image
from picmatch.images.files import content_hash
from picmatch.images.scan import scan
from picmatch.indexer import Phase, Progress
from tests.imagegen import synthetic

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
OpenLib = Callable[..., Library]
PIPE = "not a regular file (named pipe)"
DEVICE = "not a regular file (character device)"


@contextmanager
def unblocked_after(fifo: Path, seconds: float) -> Iterator[None]:
    """Guard against a reader that blocks on `fifo`: after `seconds`, open it for writing and
    close it, so the reader gets EOF and the test fails instead of hanging forever."""
    done = threading.Event()

    def release() -> None:
        if done.wait(seconds):
            return
        while not done.wait(0.2):  # keep releasing: a reader may open it again
            with contextlib.suppress(OSError):  # OSError: no reader right now
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    guard = threading.Thread(target=release, daemon=True)
    guard.start()
    try:
        yield
    finally:
        done.set()
        guard.join()


@needs_fifo
def test_special_files_with_image_names_are_reported_by_the_scan(tmp_path: Path) -> None:
    synthetic(1).save(tmp_path / "good.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "null.png").symlink_to("/dev/null")
    os.mkfifo(tmp_path / "pipe-not-an-image")  # not an image name: not looked at
    errors: list[tuple[str, str]] = []
    found = [e.path for e in scan([tmp_path], on_error=lambda p, r: errors.append((p, r)))]
    assert found == [str(tmp_path / "good.jpg")]
    assert sorted(errors) == [
        (str(tmp_path / "null.png"), DEVICE),
        (str(tmp_path / "pipe.jpg"), PIPE),
    ]
    errors.clear()
    assert list(scan([tmp_path / "pipe.jpg"], on_error=lambda p, r: errors.append((p, r)))) == []
    assert errors == [(str(tmp_path / "pipe.jpg"), PIPE)]


@needs_fifo
def test_decoding_or_hashing_a_fifo_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with unblocked_after(fifo, 20):
        with pytest.raises(ImageDecodeError) as decoding:
            decode_image(fifo)
        with pytest.raises(ImageDecodeError) as hashing:
            content_hash(fifo)
    assert decoding.value.reason == hashing.value.reason == PIPE
    with pytest.raises(ImageDecodeError) as device:
        decode_image("/dev/zero")
    assert device.value.reason == DEVICE


def _swap_for_fifo_after_scan(target: Path) -> Callable[[Progress], None]:
    def progress(p: Progress) -> None:
        if p.phase == Phase.SCAN and p.total and target.is_file():
            target.unlink()
            os.mkfifo(target)

    return progress


@pytest.mark.model
@needs_fifo
@pytest.mark.parametrize("library_state", ["new", "existing"])
def test_a_file_turned_into_a_fifo_after_the_scan_is_skipped(
    open_lib: OpenLib, tmp_path: Path, library_state: str
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        synthetic(100 + i).save(photos / f"p{i}.jpg")
    lib = open_lib(workers=2)
    if library_state == "existing":
        lib.index([photos / "p0.jpg"])
    victim = photos / "p3.jpg"
    with unblocked_after(victim, 60):
        report = lib.index([photos], progress=_swap_for_fifo_after_scan(victim))
    assert report.skipped == [(str(victim), PIPE)]
    assert report.added + report.unchanged == 5
