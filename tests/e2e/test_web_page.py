"""The web page in headless Chromium against the real server, started as `picmatch serve`.

Needs the Debian packages `chromium` and `chromium-driver` and the Python package `playwright`
(never `playwright install`: the system Chromium is used). The screenshot goes to the test's
temporary folder, and to docs/screenshot.png when that is missing or PICMATCH_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from picmatch.library import open_library
from tests.imagegen import write_photos
from tests.modelgen import write_clip_repo

pytestmark = [pytest.mark.e2e, pytest.mark.model]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
PHOTOS = (
    "chelsea", "astronaut", "coffee", "rocket", "camera", "coins", "moon", "brick", "grass",
    "clock", "retina", "hubble_deep_field",
)  # fmt: skip
TOKEN = "e2e-token"
ALL_THUMBNAILS_LOADED = (
    "[...document.querySelectorAll('.hit img')].every(i => i.complete && i.naturalWidth > 0)"
)


@dataclass(frozen=True)
class Server:
    url: str
    photos: dict[str, Path]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not start: {log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    if not CHROMIUM.exists():
        pytest.skip("headless browser test needs /usr/bin/chromium (apt-get install chromium)")
    base = tmp_path_factory.mktemp("web")
    photos = write_photos(base / "photos", PHOTOS)
    with open_library(base / "library", cache_dir=model_cache) as lib:
        lib.index([base / "photos"])
        lib.index([base / "photos"], model=f"clip:{write_clip_repo(base / 'clip')}")  # text too
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICMATCH_")}
    env.update(
        PICMATCH_TOKEN=TOKEN,
        PICMATCH_CACHE_DIR=str(model_cache),
        PICMATCH_CONFIG=str(base / "no-config.toml"),
    )
    log = base / "server.log"
    command = [sys.executable, "-m", "picmatch.cli", "serve", "--library", str(base / "library")]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield Server(url, photos)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(page: object, expression: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python: `page.wait_for_function` evaluates its string with
    eval() inside the page, which the page's Content-Security-Policy (rightly) forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.1)


def _save_screenshot(page: object, tmp_path: Path) -> Path:
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))  # type: ignore[attr-defined]
    with Image.open(shot) as image:  # a 256-colour palette keeps the file small for the README
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            shot, optimize=True
        )
    if not SCREENSHOT.exists() or os.environ.get("PICMATCH_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
    return shot


def test_upload_shows_the_indexed_copy_first(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    query = tmp_path / "my-cat.jpg"
    shutil.copyfile(server.photos["chelsea"], query)  # the same image, from outside the library
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.goto(server.url)

            # The page asks for the token once and keeps it.
            expect(page.locator("#token-dialog")).to_be_visible()
            page.fill("#token-input", TOKEN)
            page.click("#token-ok")
            expect(page.locator("#stats")).to_contain_text(f"{len(PHOTOS)} images")

            page.set_input_files("#file", str(query))
            first = page.locator(".hit").first
            expect(first.locator(".name")).to_have_text("chelsea.jpg")
            expect(first.locator(".name")).to_have_attribute("title", str(server.photos["chelsea"]))
            expect(first.locator(".score")).to_have_text("1.000")
            expect(page.locator(".hit")).to_have_count(len(PHOTOS))
            expect(page.locator("#summary")).to_contain_text(f"{len(PHOTOS)} results")
            _wait_for(page, ALL_THUMBNAILS_LOADED)
            _save_screenshot(page, tmp_path)

            # Clicking a result searches from it.
            second = page.locator(".hit .name").nth(1).inner_text()
            page.locator(".hit > button").nth(1).click()
            expect(page.locator(".hit .name").first).to_have_text(second)
            expect(page.locator("#query-label")).to_contain_text(second)

            # A reload keeps the token: no second prompt.
            page.reload()
            expect(page.locator("#stats")).to_contain_text(f"{len(PHOTOS)} images")
            expect(page.locator("#token-dialog")).to_be_hidden()
        finally:
            browser.close()


def test_errors_are_shown_and_the_layout_fits_a_phone(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    fake = tmp_path / "not-really.jpg"
    fake.write_bytes(b"this is text, not a JPEG" * 20)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            page.add_init_script(f"localStorage.setItem('picmatch.token', '{TOKEN}')")
            page.goto(server.url)
            expect(page.locator("#stats")).to_contain_text("images")

            page.set_input_files("#file", str(fake))
            expect(page.locator("#message")).to_contain_text("not an image")

            page.set_input_files("#file", str(server.photos["rocket"]))
            expect(page.locator(".hit .name").first).to_have_text("rocket.jpg")
            expect(page.locator("#message")).to_be_hidden()
            columns = page.eval_on_selector(
                "#results", "e => getComputedStyle(e).gridTemplateColumns.split(' ').length"
            )
            assert columns == 2
            overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            assert not overflow, "nothing should scroll sideways on a phone"
        finally:
            browser.close()


def test_a_text_query_goes_to_the_text_model(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.add_init_script(f"localStorage.setItem('picmatch.token', '{TOKEN}')")
            page.goto(server.url)
            expect(page.locator("#stats")).to_contain_text("images")
            with page.expect_request("**/api/search") as sent:
                page.fill("#text", "a red bicycle")
                page.press("#text", "Enter")
            body = sent.value.post_data_json
            assert body["text"] == "a red bicycle" and body["model"].startswith("clip:")
            expect(page.locator("#query-label")).to_contain_text("a red bicycle")
            expect(page.locator(".hit")).to_have_count(len(PHOTOS))
            expect(page.locator("#message")).to_be_hidden()
            expect(page.locator("#preview")).to_be_hidden()
        finally:
            browser.close()
