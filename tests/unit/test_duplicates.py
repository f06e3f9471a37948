"""Duplicate groups through the public `Library` API, with the real model and generated edits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from picmatch import Library
from picmatch.duplicates import TIER_THRESHOLDS, Tier
from picmatch.evidence import DB_NAME
from picmatch.results import DupeReport
from tests.imagegen import DUPE_EDITS, write_dupes

pytestmark = pytest.mark.model

OpenLib = Callable[..., Library]


@pytest.fixture
def dupes_dir(photo_dir: Path) -> Path:
    write_dupes(photo_dir)
    return photo_dir


def names(report: DupeReport) -> list[list[str]]:
    return [[Path(m.path).name for m in g.members] for g in report.groups]


def expected_group(name: str) -> set[str]:
    files = {f"{name}.jpg"} | {f"{name}-{e}.jpg" for e in DUPE_EDITS}
    return {f.replace("smallgray.jpg", "smallgray.png") for f in files}


def test_copy_tier_groups_each_photo_with_all_its_edits_and_keeps_the_original(
    open_lib: OpenLib, dupes_dir: Path
) -> None:
    lib = open_lib()
    lib.index([dupes_dir])
    report = lib.duplicates("copy")
    groups = {g[0]: set(g) for g in names(report)}
    assert groups == {
        "chelsea.jpg": expected_group("chelsea"),
        "astronaut.jpg": expected_group("astronaut"),
        "coffee.jpg": expected_group("coffee"),
        "rocket.jpg": {"rocket.jpg", "rocket-copy.jpg"},
    }
    assert report.images == 27 and report.redundant == 13 and report.hashed == 0
    chelsea = next(g for g in report.groups if g.keeper.path.endswith("chelsea.jpg"))
    evidence = {Path(m.path).name: m for m in chelsea.members}
    assert evidence["chelsea-mirror.jpg"].distance == 0  # the mirror-aware hash
    assert evidence["chelsea-crop.jpg"].score > 0.86 > evidence["chelsea-smallgray.png"].score
    # what the embedding alone misses, the hash catches (and the other way round)
    assert evidence["chelsea-smallgray.png"].distance is not None
    assert evidence["chelsea-smallgray.png"].distance <= 4
    assert evidence["chelsea-crop.jpg"].distance is not None
    assert evidence["chelsea-crop.jpg"].distance > TIER_THRESHOLDS[Tier.COPY].max_distance


def test_exact_tier_is_only_the_byte_copy(open_lib: OpenLib, dupes_dir: Path) -> None:
    lib = open_lib()
    lib.index([dupes_dir])
    report = lib.duplicates("exact")
    assert names(report) == [["rocket.jpg", "rocket-copy.jpg"]]
    assert report.groups[0].members[1].same_bytes


def test_keep_in_protects_a_folder_and_in_limits_the_scan(
    open_lib: OpenLib, dupes_dir: Path
) -> None:
    reference = dupes_dir / "reference"
    reference.mkdir()
    os.rename(dupes_dir / "coffee-blur.jpg", reference / "coffee-blur.jpg")
    lib = open_lib()
    lib.index([dupes_dir])
    report = lib.duplicates(keep_in=[reference])
    coffee = next(g for g in report.groups if "coffee" in g.keeper.path)
    assert coffee.keeper.path == str(reference / "coffee-blur.jpg") and coffee.keeper.protected
    only = lib.duplicates(folders=[reference])
    assert only.images == 1 and only.groups == ()


def test_hashes_of_an_old_library_are_filled_by_the_next_index_without_re_embedding(
    open_lib: OpenLib, dupes_dir: Path, library_dir: Path
) -> None:
    lib = open_lib()
    lib.index([dupes_dir])
    before = lib.duplicates()
    lib.close()
    (library_dir / DB_NAME).unlink()  # a library indexed before hashes existed
    lib = open_lib()
    report = lib.index([dupes_dir])
    assert report.embedded == 0 and report.unchanged == 27
    after = lib.duplicates()
    assert after.hashed == 0 and names(after) == names(before)


def test_move_follows_the_library_and_undo_restores_files_and_records(
    open_lib: OpenLib, dupes_dir: Path, tmp_path: Path
) -> None:
    lib = open_lib()
    lib.index([dupes_dir])
    report = lib.duplicates()
    extra = [m.path for g in report.groups for m in g.members if not m.keeper]
    review = tmp_path / "review"
    done = lib.dupe_actions().move(extra, review)
    assert len(done.done) == 13 and done.skipped == [] and done.manifest
    assert all(not Path(p).exists() for p in extra)
    moved = review / "chelsea-crop.jpg"
    assert moved.is_file() and lib.find(moved) is not None
    assert lib.find(dupes_dir / "chelsea-crop.jpg") is None and lib.count() == 27
    assert lib.duplicates().groups == ()  # the review folder is not scanned again
    undone = lib.dupe_actions().undo(done.manifest)
    assert len(undone.done) == 13 and all(Path(p).is_file() for p in extra)
    assert lib.find(dupes_dir / "chelsea-crop.jpg") is not None and lib.find(moved) is None
    assert lib.index([dupes_dir]).embedded == 0
    assert names(lib.duplicates()) == names(report)


def test_link_replaces_only_byte_copies_and_undo_unlinks(
    open_lib: OpenLib, dupes_dir: Path
) -> None:
    lib = open_lib()
    lib.index([dupes_dir])
    copy, keeper = dupes_dir / "rocket-copy.jpg", dupes_dir / "rocket.jpg"
    os.utime(copy, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    done = lib.dupe_actions().link(
        [
            (str(copy), str(keeper)),
            (str(dupes_dir / "coffee-crop.jpg"), str(dupes_dir / "coffee.jpg")),
        ]
    )
    assert [e["path"] for e in done.done] == [str(copy)]
    assert done.skipped[0][1].startswith("not byte-identical")
    assert os.path.samefile(copy, keeper)
    assert done.manifest is not None
    lib.dupe_actions().undo(done.manifest)
    assert not os.path.samefile(copy, keeper) and copy.read_bytes() == keeper.read_bytes()
    assert copy.stat().st_mtime_ns == 1_000_000_000_000_000_000


def test_undo_refuses_what_is_not_a_manifest(open_lib: OpenLib, tmp_path: Path) -> None:
    from picmatch.errors import ConfigError

    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    with pytest.raises(ConfigError, match="not a picmatch dupes manifest"):
        open_lib().dupe_actions().undo(bogus)
    with pytest.raises(ConfigError, match="unknown tier"):
        open_lib().duplicates("nearly")


def test_empty_library_has_no_groups(open_lib: OpenLib) -> None:
    report = open_lib().duplicates()
    assert report.groups == () and report.images == 0


def test_phash_mirror_hash_matches_a_flipped_image() -> None:
    from picmatch.images.phash import phash_pair
    from tests.imagegen import photo

    pixels = np.asarray(photo("chelsea"))
    direct, mirror = phash_pair(pixels)
    flipped_direct, _ = phash_pair(np.ascontiguousarray(pixels[:, ::-1]))
    assert bin(mirror ^ flipped_direct).count("1") <= 2
    assert bin(direct ^ flipped_direct).count("1") > 16


def test_a_second_run_on_an_unchanged_library_reads_no_vectors(
    open_lib: OpenLib, dupes_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = open_lib()
    lib.index([dupes_dir])
    first = lib.duplicates()

    def no_vectors(*args: object, **kwargs: object) -> None:
        raise AssertionError("the candidate pairs should come from the cache")

    with monkeypatch.context() as patched:
        patched.setattr(lib.store, "iter_records", no_vectors)
        assert names(lib.duplicates()) == names(first)
        assert len(lib.duplicates("exact").groups) == 1  # every tier shares the candidates
    (dupes_dir / "rocket-copy.jpg").unlink()  # a changed library is grouped again
    lib.index([dupes_dir])
    after = lib.duplicates()
    assert [g for g in names(after) if "rocket.jpg" in g] == []
    assert len(after.groups) == 3
