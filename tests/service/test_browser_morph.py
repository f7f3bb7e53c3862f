"""The web page's Morph view in a real browser (Debian's chromium): a morph generated from two
people of faces_small, shown next to both, with the similarity of the morph to each."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from faceprint.attacks.morph import Morpher

from ..conftest import data_path
from .conftest import LiveServer
from .test_browser import browser, open_page  # noqa: F401  (the chromium fixture)

pytestmark = [pytest.mark.service, pytest.mark.slow]


def _drawn(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("(sel) => document.querySelector(sel).width > 0", selector))


def test_morph_view_shows_both_comparison_scores(browser, live_server: LiveServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    a, b = data_path("faces_small", "obama", "obama.jpg"), data_path("faces_small", "biden", "biden.jpg")
    morph = tmp_path / "morph.png"
    cv2.imwrite(str(morph), cv2.cvtColor(Morpher("flow").morph(a, b).image, cv2.COLOR_RGB2BGR))

    page, errors = open_page(browser, live_server.url, height=1400)
    page.fill("#api-key", live_server.keys.admin)

    page.click("#morph-btn")  # nothing chosen: said on the page
    page.wait_for_selector("#morph-result.bad", timeout=10_000)
    assert page.inner_text("#morph-result").startswith("Choose")

    page.set_input_files("#morph-a", str(a))
    page.set_input_files("#morph-m", str(morph))
    page.set_input_files("#morph-b", str(b))
    page.click("#morph-btn")
    page.wait_for_selector("#morph-result.ok, #morph-result.bad", timeout=90_000)
    text = page.inner_text("#morph-result")
    found = re.findall(r"M vs ([AB]): (-?\d\.\d{3}) \((match|no match)\)", text)
    assert [w for w, _, _ in found] == ["A", "B"], text
    assert all(-1.0 <= float(s) <= 1.0 for _, s, _ in found)
    assert ("matches both" in text) == all(v == "match" for _, _, v in found)
    assert all(_drawn(page, f"#morph-canvas-{k}") for k in "amb")
    page.close()
    assert not errors, errors
