"""The inversion attack and the protection report, on real LFW View 1 DevTest faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation.protection import evaluate_protection, inversion_attack, template_features, write_report
from faceprint.protection import derive_key
from faceprint.registry import template_protectors

from .conftest import devtest_pairs

APP = derive_key("a test secret of enough length", "tests")
pytestmark = pytest.mark.slow  # embeds 120 LFW images


@pytest.fixture(scope="module")
def pairs(embed):  # type: ignore[no-untyped-def]
    chosen = devtest_pairs(30)
    a = np.stack([embed(p[0]) for p in chosen])
    b = np.stack([embed(p[1]) for p in chosen])
    mated = np.array([p[2] for p in chosen])
    return a, b, mated, np.array([p[3] for p in chosen]), np.array([p[4] for p in chosen])


@pytest.mark.parametrize("method", ["biohash", "iom"])
def test_inversion_with_the_key_beats_inversion_without_it(method: str, pairs) -> None:  # type: ignore[no-untyped-def]
    a, b, mated, sa, sb = pairs
    # the attacker's data: the non-mated pairs' images (people other than the mated pairs' victims)
    train = np.concatenate([a[~mated], b[~mated]])
    subjects = np.concatenate([sa[~mated], sb[~mated]])
    victims = ~np.isin(sa, subjects) & mated
    p = template_protectors.create(method)
    key = APP.child("victim")
    kw = dict(regressor="ridge", target_fmr=0.05)
    stolen = inversion_attack(p, key, train, subjects, a[victims], b[victims], **kw)  # type: ignore[arg-type]
    blind = inversion_attack(p, key, train, subjects, a[victims], b[victims], victim_key=APP.child("x"), **kw)  # type: ignore[arg-type]
    assert stolen.n_victims == int(victims.sum()) > 5
    assert stolen.mean_cosine > blind.mean_cosine + 0.02
    assert stolen.success_rate >= blind.success_rate
    assert stolen.success_rate_unprotected == blind.success_rate_unprotected > 0.5


def test_template_features_and_refusals(pairs) -> None:  # type: ignore[no-untyped-def]
    a = pairs[0][:3]
    bio = template_features(template_protectors.create("biohash").protect(a, APP))
    assert bio.shape == (3, 128) and set(np.unique(bio)) == {-1.0, 1.0}
    iom = template_features(template_protectors.create("iom", hashes=4, q=8).protect(a, APP))
    assert iom.shape == (3, 32) and np.all(iom.sum(axis=1) == 4)
    with pytest.raises(ConfigurationError, match="regressor"):
        inversion_attack(template_protectors.create("iom"), APP, a, ["x", "y", "z"], a, a, regressor="svm")


def test_the_report_has_markdown_html_json_and_the_linkability_plot(pairs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = evaluate_protection(template_protectors.create("biohash"), *pairs, APP, target_fmr=0.1)
    paths = write_report(r, tmp_path / "rep")
    names = {p.name for p in paths}
    assert names == {"protection.md", "protection.html", "protection.json", "linkability.png"}
    html = (tmp_path / "rep" / "protection.html").read_text()
    assert "data:image/png;base64," in html and "D&lt;-&gt;sys" in html
    doc = json.loads((tmp_path / "rep" / "protection.json").read_text())
    assert doc["unlinkability"]["d_sys"] == pytest.approx(r.unlinkability.d_sys, abs=1e-6)
    assert (tmp_path / "rep" / "linkability.png").read_bytes()[:4] == b"\x89PNG"
