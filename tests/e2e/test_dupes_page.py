"""The duplicates page in headless Chromium against `picmatch serve`: groups side by side,
change the keeper, untick a member, move, undo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from picmatch.library import open_library
from tests.e2e.test_web_page import (
    CHROMIUM,
    CHROMIUM_ARGS,
    _free_port,
    _wait_for,
    _wait_until_healthy,
)
from tests.imagegen import write_dupes, write_photos

pytestmark = [pytest.mark.e2e, pytest.mark.model]

TOKEN = "dupes-token"
FIRST_THUMBNAILS_LOADED = (
    "[...document.querySelectorAll('.member img')].slice(0, 10)"
    ".every(i => i.complete && i.naturalWidth > 0)"
)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dupes.png"


@dataclass(frozen=True)
class Server:
    url: str
    root: Path


@pytest.fixture
def server(tmp_path: Path, model_cache: Path) -> Iterator[Server]:
    if not CHROMIUM.exists():
        pytest.skip("headless browser test needs /usr/bin/chromium (apt-get install chromium)")
    root = tmp_path / "photos"
    write_photos(root, ("chelsea", "astronaut", "coffee", "rocket", "camera", "moon"))
    write_dupes(root)
    with open_library(tmp_path / "library", cache_dir=model_cache) as lib:
        lib.index([root])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICMATCH_")}
    env.update(
        PICMATCH_TOKEN=TOKEN,
        PICMATCH_CACHE_DIR=str(model_cache),
        PICMATCH_CONFIG=str(tmp_path / "no-config.toml"),
    )
    port = _free_port()
    log = tmp_path / "server.log"
    command = [
        sys.executable,
        "-m",
        "picmatch.cli",
        "serve",
        "--library",
        str(tmp_path / "library"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield Server(url, root)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_review_groups_change_the_keeper_move_and_undo(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(f"localStorage.setItem('picmatch.token', '{TOKEN}')")
            page.goto(server.url)
            page.click("a.nav")
            expect(page.locator("#summary")).to_contain_text("4 groups, 13 extra copies")
            groups = page.locator(".group")
            expect(groups).to_have_count(4)
            chelsea = groups.filter(has_text="chelsea.jpg")
            expect(chelsea.locator(".member")).to_have_count(5)
            expect(chelsea.locator(".member.is-keeper .name")).to_have_text("chelsea.jpg")
            expect(chelsea.locator(".member").nth(1).locator(".evidence")).to_contain_text("score")
            expect(page.locator("#rule")).to_contain_text("keeper: inside --keep-in")
            expect(page.locator("#move-button")).to_have_text("Move 13 files")
            _wait_for(page, FIRST_THUMBNAILS_LOADED)
            shot = tmp_path / "dupes.png"
            page.screenshot(path=str(shot))
            with Image.open(shot) as image:  # a 256-colour palette keeps the file small
                small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
                small.save(shot, optimize=True)
            if not SCREENSHOT.exists() or os.environ.get("PICMATCH_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, SCREENSHOT)

            # Keep the mirror instead of the original; leave the crop where it is.
            mirror = chelsea.locator(".member", has_text="chelsea-mirror.jpg")
            mirror.locator("input.keep").check()
            expect(chelsea.locator(".member.is-keeper .name")).to_have_text("chelsea-mirror.jpg")
            chelsea.locator(".member", has_text="chelsea-crop.jpg").locator("input.move").uncheck()
            expect(page.locator("#move-button")).to_have_text("Move 12 files")

            review = server.root / "picmatch-review"
            expect(page.locator("#move-to")).to_have_value(str(review))
            page.click("#move-button")
            expect(page.locator("#done-text")).to_contain_text("Moved 12 files")
            expect(page.locator("#summary")).to_contain_text("1 group")  # chelsea + its crop
            assert (server.root / "chelsea-mirror.jpg").exists()
            assert (server.root / "chelsea-crop.jpg").exists()
            assert not (server.root / "chelsea.jpg").exists()
            assert (review / "chelsea.jpg").exists()

            page.click("#undo-button")
            expect(page.locator("#done-text")).to_contain_text("Undone: 12 files back")
            expect(page.locator("#summary")).to_contain_text("4 groups")
            assert (server.root / "chelsea.jpg").exists() and not (review / "chelsea.jpg").exists()
        finally:
            browser.close()
