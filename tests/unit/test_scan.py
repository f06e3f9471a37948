"""Scanning folders for images, and hashing file contents."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from picmatch.errors import ImageDecodeError
from picmatch.images.files import content_hash
from picmatch.images.scan import FileEntry, is_image_name, scan

ROOT_USER = os.geteuid() == 0


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def paths(roots: Iterable[str | Path], errors: list[tuple[str, str]] | None = None) -> list[str]:
    """The paths `scan` yields; what it reports goes to `errors`."""

    def record(path: str, reason: str) -> None:
        if errors is not None:
            errors.append((path, reason))

    return [entry.path for entry in scan(roots, on_error=record)]


def test_extensions_match_in_any_case(tmp_path: Path) -> None:
    for name in ["a.JPG", "b.Png", "c.HeIc", "d.jpeg", "e.jfif", "f.AVIF", "g.tiff", "h.webp"]:
        touch(tmp_path / name)
    for name in ["notes.txt", "x.jpg.bak", "raw.cr2", "jpg", "movie.mp4"]:
        touch(tmp_path / name)
    names = [Path(p).name for p in paths([tmp_path])]
    assert names == ["a.JPG", "b.Png", "c.HeIc", "d.jpeg", "e.jfif", "f.AVIF", "g.tiff", "h.webp"]
    assert is_image_name("X.JPE") and not is_image_name("x.svg")


def test_entries_carry_absolute_path_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = touch(tmp_path / "album" / "one.jpg", b"12345")
    monkeypatch.chdir(tmp_path)
    [entry] = scan(["album/../album"])
    info = image.stat()
    assert entry == FileEntry(str(image), 5, info.st_mtime_ns)
    assert os.path.isabs(entry.path)


def test_hidden_and_junk_entries_are_skipped(tmp_path: Path) -> None:
    keep = touch(tmp_path / "keep.jpg")
    for junk in [
        ".hidden/a.jpg",
        "@eaDir/keep.jpg/SYNOPHOTO_THUMB_XL.jpg",
        "#recycle/b.jpg",
        "$RECYCLE.BIN/c.jpg",
        "System Volume Information/d.jpg",
        ".Trashes/501/e.jpg",
        "._keep.jpg",
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        ".photo.jpg",
    ]:
        touch(tmp_path / junk)
    assert paths([tmp_path]) == [str(keep)]


def test_order_is_sorted_and_depth_first(tmp_path: Path) -> None:
    for name in ["b/2.jpg", "b/1.jpg", "a.jpg", "c.jpg", "b/z/0.jpg", "a/9.jpg"]:
        touch(tmp_path / name)
    relative = [os.path.relpath(p, tmp_path) for p in paths([tmp_path])]
    assert relative == ["a/9.jpg", "a.jpg", "b/1.jpg", "b/2.jpg", "b/z/0.jpg", "c.jpg"]
    assert paths([tmp_path]) == paths([tmp_path])


def test_symlink_loops_end(tmp_path: Path) -> None:
    image = touch(tmp_path / "a" / "b" / "x.jpg")
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "a" / "self").symlink_to(".", target_is_directory=True)
    assert paths([tmp_path / "a"]) == [str(image)]


def test_folder_symlinks_are_followed_without_resolving_paths(tmp_path: Path) -> None:
    outside = touch(tmp_path / "elsewhere" / "y.jpg")
    library = tmp_path / "library"
    library.mkdir()
    (library / "linked").symlink_to(outside.parent, target_is_directory=True)
    (library / "z.jpg").symlink_to(outside)
    assert paths([library]) == [str(library / "linked" / "y.jpg"), str(library / "z.jpg")]


def test_a_file_root_is_yielded_as_given(tmp_path: Path) -> None:
    image = touch(tmp_path / "one.jpg")
    other = touch(tmp_path / "scan.pdf")
    assert paths([image, other]) == [str(image), str(other)]


def test_each_file_is_yielded_once_across_roots(tmp_path: Path) -> None:
    top = touch(tmp_path / "top.jpg")
    deep = touch(tmp_path / "sub" / "deep.jpg")
    everything = [str(top), str(deep)]
    assert sorted(paths([tmp_path, tmp_path / "sub", tmp_path])) == sorted(everything)
    assert sorted(paths([tmp_path / "sub", tmp_path])) == sorted(everything)
    assert sorted(paths([deep, tmp_path])) == sorted(everything)
    assert sorted(paths([tmp_path, deep, deep])) == sorted(everything)


def test_missing_roots_and_broken_links_are_reported(tmp_path: Path) -> None:
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    errors: list[tuple[str, str]] = []
    assert paths([tmp_path / "absent", tmp_path], errors) == []
    assert errors == [
        (str(tmp_path / "absent"), "file not found"),
        (str(tmp_path / "dangling.jpg"), "broken symbolic link"),
    ]


@pytest.mark.skipif(ROOT_USER, reason="root reads folders whatever their permissions")
def test_unreadable_folder_is_reported_and_skipped(tmp_path: Path) -> None:
    readable = touch(tmp_path / "ok" / "a.jpg")
    locked = tmp_path / "locked"
    touch(locked / "b.jpg")
    locked.chmod(0)
    errors: list[tuple[str, str]] = []
    try:
        assert paths([tmp_path], errors) == [str(readable)]
    finally:
        locked.chmod(0o755)
    assert errors == [(str(locked), "permission denied")]


def test_a_folder_that_fails_to_list_is_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same path as above, for runs as root: the OS call fails the way it does for users."""
    readable = touch(tmp_path / "ok" / "a.jpg")
    locked = tmp_path / "locked"
    touch(locked / "b.jpg")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if path == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    errors: list[tuple[str, str]] = []
    assert paths([tmp_path], errors) == [str(readable)]
    assert errors == [(str(locked), "permission denied")]


def test_scan_is_lazy(tmp_path: Path) -> None:
    for index in range(5):
        touch(tmp_path / f"{index}.jpg")
    walker = scan([tmp_path])
    assert next(walker).path == str(tmp_path / "0.jpg")


def test_content_hash_is_blake2b_128_of_the_bytes(tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)  # spans several 1 MiB chunks
    path = touch(tmp_path / "big.jpg", payload)
    expected = hashlib.blake2b(payload, digest_size=16).hexdigest()
    assert content_hash(path) == expected == content_hash(str(path))
    assert len(expected) == 32
    empty = touch(tmp_path / "empty.jpg", b"")
    assert content_hash(empty) == hashlib.blake2b(b"", digest_size=16).hexdigest()


def test_content_hash_errors_say_why(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError) as missing:
        content_hash(tmp_path / "gone.jpg")
    assert missing.value.reason == "file not found"
    assert missing.value.path == str(tmp_path / "gone.jpg")
    with pytest.raises(ImageDecodeError) as folder:
        content_hash(tmp_path)
    assert folder.value.reason == "is a directory"


@pytest.mark.skipif(ROOT_USER, reason="root reads files whatever their permissions")
def test_content_hash_of_an_unreadable_file(tmp_path: Path) -> None:
    path = touch(tmp_path / "locked.jpg")
    path.chmod(0)
    with pytest.raises(ImageDecodeError) as caught:
        content_hash(path)
    assert caught.value.reason == "permission denied"
