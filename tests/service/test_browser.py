"""The web page in a real browser (Playwright driving Debian's chromium) against a real server:
create a gallery, enrol a subject, identify a photo, verify two photos; boxes drawn on canvases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..conftest import data_path
from .conftest import LiveServer

pytestmark = pytest.mark.service

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium package to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, url: str, *, height: int = 1100):  # type: ignore[no-untyped-def]
    """A new page on the server's web page once it is ready, and the list its JS errors go to."""
    page = browser.new_page(viewport={"width": 1360, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    page.wait_for_selector("#status.ready", timeout=15_000)
    return page, errors


def _canvas_has_green_box(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether the canvas has pixels of the box colour (#00e676) drawn on the photo."""
    return bool(
        page.evaluate(
            """(sel) => {
                const c = document.querySelector(sel);
                if (!c || !c.width) return false;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4)
                    if (d[i] < 20 && d[i+1] > 210 && d[i+2] > 100 && d[i+2] < 140) n++;
                return n > 50;
            }""",
            selector,
        )
    )


def _badges(page, selector: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The labels of the quality badges in a container, each checked to show a 0-100 score and a
    level class, with a tooltip."""
    labels = []
    for b in page.query_selector_all(f"{selector} .quality-badge"):
        label, _, score = b.inner_text().partition(": quality ")
        assert score.isdigit() and 0 <= int(score) <= 100, b.inner_text()
        assert {"good", "fair", "poor"} & set((b.get_attribute("class") or "").split())
        assert b.get_attribute("title")
        labels.append(label)
    return labels


def test_enrol_and_identify_through_the_page(browser, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    obama = data_path("faces_small", "obama")
    page, errors = open_page(browser, live_server.url)

    page.fill("#api-key", live_server.keys.admin)
    page.fill("#enrol-gallery", "web")
    page.click("#create-gallery-btn")
    page.wait_for_selector("#enrol-result.ok", timeout=15_000)

    page.fill("#enrol-subject", "obama")
    page.set_input_files("#enrol-files", [str(obama / "obama.jpg"), str(obama / "obama_small.jpg")])
    page.click("#enrol-btn")
    page.wait_for_selector("#enrol-result.ok", timeout=60_000)
    assert "2 template(s)" in page.inner_text("#enrol-result")
    assert _badges(page, "#enrol-quality") == ["photo 1", "photo 2"]  # the server runs fiqa-fast

    page.fill("#identify-gallery", "web")
    page.set_input_files("#identify-file", str(obama / "obama2.jpg"))
    page.click("#identify-btn")
    page.wait_for_selector("#identify-result.ok", timeout=60_000)  # (no wait_for_function: the page's CSP forbids eval)
    assert page.inner_text("#identify-result") == "Identified: obama"
    assert "obama" in page.inner_text("#identify-candidates")
    assert _canvas_has_green_box(page, "#identify-canvas")
    assert _badges(page, "#identify-quality") == ["probe"]

    page.set_input_files("#verify-a", str(obama / "obama1.jpg"))
    page.set_input_files("#verify-b", str(obama / "obama3.jpg"))
    page.click("#verify-btn")
    page.wait_for_selector("#verify-result.ok", timeout=60_000)
    assert page.inner_text("#verify-result").startswith("Match")
    assert _canvas_has_green_box(page, "#verify-canvas-a") and _canvas_has_green_box(page, "#verify-canvas-b")
    assert _badges(page, "#verify-quality") == ["A", "B"]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "service_web_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # a wrong key is reported on the page, not crashed on
    page.fill("#api-key", "fp_000000000000_" + "x" * 43)
    page.click("#identify-btn")
    page.wait_for_selector("#identify-result.bad", timeout=30_000)
    assert page.inner_text("#identify-result").startswith("401")
    assert "unauthorized" in page.inner_text("#identify-result")
    page.close()
    assert not [e for e in errors if "401" not in e], errors


def test_chromium_is_the_debian_one() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent")
    assert shutil.which("chromium") or CHROMIUM.exists()
