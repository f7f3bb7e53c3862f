"""The web page's "Explain" view in a real browser (Playwright driving Debian's chromium) against a
real ``faceprint serve``: verify two photos, explain the result, see the picture and the caption."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import data_path
from ..service.conftest import LiveServer, live_server  # noqa: F401  (fixture)
from ..service.test_browser import ARTIFACTS, browser, open_page  # noqa: F401  (fixture)

pytestmark = [pytest.mark.service, pytest.mark.slow]


def _image_loaded(page, selector: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    return tuple(page.eval_on_selector(selector, "el => [el.naturalWidth, el.naturalHeight]"))  # type: ignore[return-value]


def test_explain_a_verify_result_in_the_page(browser, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    obama = data_path("faces_small", "obama")
    biden = data_path("faces_small", "biden")
    page, errors = open_page(browser, live_server.url, height=1400)
    assert page.is_hidden("#explain-box")  # nothing to explain before a verify result

    page.fill("#api-key", live_server.keys.recognize)
    page.set_input_files("#verify-a", str(obama / "obama1.jpg"))
    page.set_input_files("#verify-b", str(obama / "obama3.jpg"))
    page.click("#verify-btn")
    page.wait_for_selector("#verify-result.ok", timeout=60_000)
    page.wait_for_selector("#explain-box", state="visible", timeout=5_000)

    page.click("#explain-btn")
    page.wait_for_selector("#explain-result.ok", timeout=120_000)
    assert "explained by occlusion" in page.inner_text("#explain-result")
    width, height = _image_loaded(page, "#explain-img")
    assert width > 2 * height > 0  # two faces side by side
    assert "not why a person is who they are" in page.inner_text("#explain-caption")

    page.select_option("#explain-method", "xcos")
    page.click("#explain-btn")
    page.wait_for_selector("#explain-result.ok >> text=explained by xcos", timeout=120_000)
    assert "patch cosines reconstruct" in page.inner_text("#explain-result")

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "service_web_explain.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # a new photo hides the old explanation; a different person is explained too
    page.set_input_files("#verify-b", str(biden / "biden.jpg"))
    assert page.is_hidden("#explain-box")
    page.click("#verify-btn")
    page.wait_for_selector("#verify-result.bad", timeout=60_000)
    assert page.inner_text("#verify-result").startswith("No match")
    page.click("#explain-btn")
    page.wait_for_selector("#explain-result.ok", timeout=120_000)
    assert page.inner_text("#explain-result").startswith("No match")
    page.close()
    assert not errors, errors


def test_artifacts_folder_is_ignored() -> None:
    assert (Path(__file__).resolve().parents[1] / "artifacts") == ARTIFACTS
