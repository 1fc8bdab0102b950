"""The HTML report in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
it renders, every image loads, the console stays clean, nothing is requested beyond the file,
and the 3-D viewer redraws on the frame slider, on play, on drag and on the wheel.

Skipped when Playwright or ``/usr/bin/chromium`` (``SKELROBUST_CHROMIUM``) is missing, except
under ``SKELROBUST_REQUIRE_BROWSER=1`` (``make test``), where that is a failure.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from report_fixtures import FRAMES, make_store
from skelrobust.report.build import build_report

CHROMIUM = os.environ.get("SKELROBUST_CHROMIUM", "/usr/bin/chromium")
#: A hash of a canvas's pixels (FNV-1a over every 7th byte), computed in the page.
FINGERPRINT = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 2166136261; for (let i = 0; i < d.length; i += 7) { h = Math.imul(h ^ d[i], 16777619); }
  return h >>> 0; }"""


def _browser_or_skip():
    """Playwright's ``sync_playwright``, or a skip (a failure when the browser is required)."""
    required = os.environ.get("SKELROBUST_REQUIRE_BROWSER", "") not in ("", "0")
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed (pip install 'skelrobust[browser]')"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} is missing (apt-get install chromium, or make test)"
    if problem is not None:
        if required:
            pytest.fail(f"SKELROBUST_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    """The report (8 clips per attack: one- and two-body clips, one padded) open in Chromium;
    yields ``(page, console errors, requests that left the file)``."""
    sync_playwright = _browser_or_skip()
    root = tmp_path_factory.mktemp("store")
    make_store(root)
    page_path = build_report(root, clips_per_attack=8).html
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def guard(route):
            if route.request.url.startswith(("file:", "data:")):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:"))
                else outside.append(r.url))
        page.goto(Path(page_path).as_uri(), wait_until="load")
        yield page, errors, outside
        context.close()
        browser.close()


def fingerprint(page, index: int) -> int:
    return page.locator("figure.clip canvas.view").nth(index).evaluate(FINGERPRINT)


def set_frame(page, index: int, frame: int) -> None:
    page.locator("figure.clip input.frame").nth(index).evaluate(
        "(s, t) => { s.value = t; s.dispatchEvent(new Event('input', {bubbles: true})); }",
        frame)


def test_page_renders_and_images_load(browser_page):
    page, errors, outside = browser_page
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L"))
    assert shot.shape[0] > 900 and shot.std() > 10  # not a blank page
    assert len(np.unique(shot)) > 50
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) == 4 and all(done and width > 0 for done, width in images)
    assert page.locator("table").count() >= 8 and "85.0 ± 7.1" in page.inner_text("body")
    assert errors == [] and outside == []


def test_every_viewer_draws_a_skeleton(browser_page):
    page, errors, _ = browser_page
    clips = page.evaluate("JSON.parse(document.getElementById('skelrobust-clips').textContent)")
    assert page.locator("figure.clip canvas.view").count() == len(clips) == 12
    assert {c["bodies"] for c in clips} == {1, 2}
    for i in range(len(clips)):
        dark = page.locator("figure.clip canvas.view").nth(i).evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let k = 0; k < d.length; k += 4) { if (d[k] < 100) n++; }
            return n; }""")
        assert dark > 200, i  # bones and joints drawn
    assert errors == []


def test_slider_moves_the_frame_and_respects_padding(browser_page):
    page, errors, _ = browser_page
    clips = page.evaluate("JSON.parse(document.getElementById('skelrobust-clips').textContent)")
    two = next(i for i, c in enumerate(clips) if c["bodies"] == 2)
    padded = next(i for i, c in enumerate(clips) if c["frames"] < FRAMES)
    for index in (0, two):
        set_frame(page, index, 0)
        before = fingerprint(page, index)
        set_frame(page, index, FRAMES - 1)
        assert fingerprint(page, index) != before
        set_frame(page, index, 0)
        assert fingerprint(page, index) == before  # the same frame draws the same pixels
    slider = page.locator("figure.clip input.frame").nth(padded)
    assert slider.get_attribute("max") == str(clips[padded]["frames"] - 1) == "9"
    set_frame(page, padded, 50)
    label = page.locator("figure.clip .frame-no").nth(padded).inner_text()
    assert label == "frame 10 / 10"  # clamped to the real frames, padding never shown
    assert errors == []


def test_play_drag_and_wheel_redraw(browser_page):
    page, errors, _ = browser_page
    set_frame(page, 1, 0)
    start = fingerprint(page, 1)
    button = page.locator("figure.clip button.play").nth(1)
    button.click()
    assert button.inner_text() == "Pause"
    page.wait_for_function(f"() => ({FINGERPRINT})(document.querySelectorAll("
                           f"'figure.clip canvas.view')[1]) !== {start}", timeout=5000)
    frame = int(page.locator("figure.clip input.frame").nth(1).input_value())
    button.click()
    assert button.inner_text() == "Play" and frame > 0
    canvas = page.locator("figure.clip canvas.view").nth(1)
    canvas.scroll_into_view_if_needed()
    paused = fingerprint(page, 1)
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 80, y + 10, steps=4)
    page.mouse.up()
    rotated = fingerprint(page, 1)
    assert rotated != paused
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => ({FINGERPRINT})(document.querySelectorAll("
                           f"'figure.clip canvas.view')[1]) !== {rotated}", timeout=2000)
    legend = page.locator("figure.clip .legend .hi").nth(1).inner_text()
    assert legend.endswith(" mm") and float(legend.split()[0]) > 0
    assert errors == []
