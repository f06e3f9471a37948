"""The map page in headless Chromium against `picmatch serve`, on two families of images.

Same setup as test_web_page.py (Debian chromium, playwright without downloaded browsers). The
screenshot goes to docs/map.png when that is missing or PICMATCH_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picmatch.library import open_library
from picmatch.map_store import refresh_map
from tests.e2e.test_web_page import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    _free_port,
    _wait_for,
    _wait_until_healthy,
)
from tests.map_images import separation, write_families

pytestmark = [pytest.mark.e2e, pytest.mark.model]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "map.png"
PER_FAMILY = 30


@pytest.fixture(scope="module")
def map_library(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    base = tmp_path_factory.mktemp("map")
    write_families(base / "photos", PER_FAMILY)
    with open_library(base / "library", cache_dir=model_cache) as lib:
        lib.index([base / "photos"])
        refresh_map(lib)
    return base / "library"


@pytest.fixture(scope="module")
def map_server(map_library: Path, model_cache: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("headless browser test needs /usr/bin/chromium (apt-get install chromium)")
    base = map_library.parent
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
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _save_screenshot(page: object, tmp_path: Path) -> None:
    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot))  # type: ignore[attr-defined]
    with Image.open(shot) as image:
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            shot, optimize=True
        )
    if not SCREENSHOT.exists() or os.environ.get("PICMATCH_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_the_map_shows_two_clusters_and_a_click_searches(map_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.add_init_script(f"localStorage.setItem('picmatch.token', '{TOKEN}')")
            page.goto(map_server)
            page.click("a[href='/map']")
            _wait_for(page, "window.picmatchMap && window.picmatchMap.ready")
            expect(page.locator("#stats")).to_contain_text(f"{2 * PER_FAMILY} images")

            # What is drawn: both families form their own cluster on screen.
            count = page.evaluate("picmatchMap.count()")
            assert count == 2 * PER_FAMILY
            where = page.evaluate(
                "[...Array(picmatchMap.count()).keys()].map(picmatchMap.screenOf)"
            )
            folders = page.evaluate("picmatchMap.folders()")
            xy = np.array([[p["x"], p["y"]] for p in where])
            sunsets = np.array([f.endswith("sunsets") for f in folders])
            within, between = separation(xy, sunsets)
            assert between > 1.5 * within, (within, between)

            # Zoomed in, tiles come from the sprite sheets; hover names the image.
            page.evaluate("picmatchMap.zoomTo(2.5)")
            names = page.evaluate("picmatchMap.names()")
            target = int(np.flatnonzero(sunsets)[0])
            page.evaluate(f"picmatchMap.centre({target})")
            spot = page.evaluate(f"picmatchMap.screenOf({target})")
            page.mouse.move(spot["x"], spot["y"])
            expect(page.locator("#tip")).to_be_visible()
            hovered = page.locator("#tip-name").inner_text()
            assert hovered in names

            # A click searches from the image under the pointer and marks query and results.
            page.mouse.click(spot["x"], spot["y"])
            expect(page.locator(".result")).to_have_count(24)
            first = page.locator(".result .name").first
            expect(first).to_have_text(hovered)
            expect(page.locator(".result .score").first).to_contain_text("1.000 · almost certainly")
            marked = page.evaluate("picmatchMap.highlighted()")
            assert marked["query"] >= 0 and len(marked["results"]) == 24
            same_family = [sunsets[i] == sunsets[marked["query"]] for i in marked["results"]]
            assert sum(same_family) >= 20, "results come from the clicked image's family"
            page.evaluate("picmatchMap.fit()")
            spot = page.evaluate(f"picmatchMap.screenOf({marked['query']})")
            page.mouse.move(spot["x"], spot["y"])
            page.wait_for_timeout(300)  # let the sheets and thumbnails arrive
            _save_screenshot(page, tmp_path)

            # The heat map of a result renders.
            page.locator(".result .why").nth(1).click()
            expect(page.locator("#explain")).to_be_visible()
            _wait_for(
                page,
                "(i => i.complete && i.naturalWidth > 500)(document.getElementById('explain-img'))",
            )
            page.locator("#explain button").click()

            # Filtering by folder: searches keep to that folder.
            grids = next(
                i
                for i, f in enumerate(page.evaluate("picmatchMap.folderNames()"))
                if f.endswith("grids")
            )
            page.select_option("#folder", str(grids))
            page.mouse.click(spot["x"], spot["y"])
            expect(page.locator(".result .name").first).to_contain_text("grid-")
            expect(page.locator(".result")).to_have_count(24)
            result_names = page.locator(".result .name").all_inner_texts()
            assert all(name.startswith("grid-") for name in result_names)
        finally:
            browser.close()


def test_search_results_read_their_scores_and_explain_an_upload(
    map_server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.map_images import sunset

    query = tmp_path / "my-sunset.jpg"
    sunset(3).crop((10, 10, 180, 130)).save(query)  # an edited copy from outside the library
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.add_init_script(f"localStorage.setItem('picmatch.token', '{TOKEN}')")
            page.goto(map_server)
            expect(page.locator("#stats")).to_contain_text("images")
            page.set_input_files("#file", str(query))
            first = page.locator(".hit").first
            expect(first.locator(".name")).to_have_text("sunset-003.jpg")
            expect(first.locator(".reading")).not_to_be_empty()
            words = first.locator(".reading").inner_text()
            score = float(first.locator(".score").inner_text())
            bands = page.evaluate(
                "fetch('/api/readings', {headers: {Authorization: 'Bearer "
                + TOKEN
                + "'}}).then(r => r.json())"
            )["readings"]
            assert words == next(b["words"] for b in bands if score >= b["min"])
            expect(page.locator(".hit").last.locator(".reading")).to_have_text(
                next(
                    b["words"]
                    for b in bands
                    if float(page.locator(".hit .score").last.inner_text()) >= b["min"]
                )
            )

            first.locator(".why").click()
            expect(page.locator("#explain")).to_be_visible()
            _wait_for(
                page,
                "(i => i.complete && i.naturalWidth > 500)(document.getElementById('explain-img'))",
            )
        finally:
            browser.close()


def test_the_exported_map_opens_from_disk(
    map_library: Path, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from picmatch.cli import main

    if not CHROMIUM.exists():
        pytest.skip("headless browser test needs /usr/bin/chromium (apt-get install chromium)")
    monkeypatch.setenv("PICMATCH_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("PICMATCH_CONFIG", str(tmp_path / "no-config.toml"))
    out = tmp_path / "shared map"
    assert main(["map", "--library", str(map_library), "--html", str(out), "-q"]) == 0
    data = (out / "static" / "map-data.js").read_text()
    assert str(map_library.parent) not in data, "a published map holds no local paths"
    assert sorted(p.name for p in (out / "sheets").iterdir()) == ["sheet-0000.jpg"]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto((out / "index.html").as_uri())
            _wait_for(page, "window.picmatchMap && window.picmatchMap.ready")
            assert page.evaluate("picmatchMap.count()") == 2 * PER_FAMILY
            assert sorted(set(page.evaluate("picmatchMap.folderNames()"))) == [
                "photos/grids",
                "photos/sunsets",
            ]
            spot = page.evaluate("picmatchMap.screenOf(0)")
            page.mouse.click(spot["x"], spot["y"])
            expect(page.locator("#summary")).to_contain_text(".jpg — photos/")
        finally:
            browser.close()
    assert main(["map", "--library", str(map_library), "--html", str(out), "-q"]) == 0
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    assert main(["map", "--library", str(map_library), "--html", str(tmp_path / "busy")]) == 2
