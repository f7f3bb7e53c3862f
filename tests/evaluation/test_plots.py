"""Display objects render to PNG; importing the module does not import matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from scipy.stats import norm  # noqa: E402

from faceprint.evaluation import fairness, metrics  # noqa: E402
from faceprint.evaluation.plots import (  # noqa: E402
    DET_TICKS,
    CMCDisplay,
    DETDisplay,
    GroupBarDisplay,
    ROCDisplay,
    ScoreHistogramDisplay,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(2.5, 1, 2000), rng.normal(0, 1, 20000)


def _save(disp, path: Path) -> None:
    disp.figure_.savefig(path)
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG)


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = (
        "import sys, faceprint.evaluation.plots, faceprint.evaluation.metrics, faceprint.evaluation.fairness;"
        "bad = [m for m in ('matplotlib', 'scipy') if m in sys.modules]; sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_det_display_uses_normal_deviate_axes(scores, tmp_path: Path) -> None:
    g, i = scores
    d = DETDisplay.from_scores(g, i, name="model")
    _save(d, tmp_path / "det.png")
    lo_x, hi_x = d.ax_.get_xlim()
    # 20000 non-mated → smallest positive FMR 5e-5 → from the 1e-5 tick; largest FMR < 1 → 99.9 %
    assert lo_x == pytest.approx(norm.ppf(1e-5)) and hi_x == pytest.approx(norm.ppf(0.999))
    ticks = [t for t in DET_TICKS if 1e-5 <= t <= 0.999]
    np.testing.assert_allclose(d.ax_.get_xticks(), norm.ppf(ticks))
    labels = [t.get_text() for t in d.ax_.get_xticklabels()]
    assert labels[0] == "0.001%" and labels[-1] == "99.9%" and "50%" in labels
    assert all(x.endswith("%") for x in labels)
    # 2000 mated → smallest positive FNMR 5e-4 → from the 1e-4 tick
    lo_y, hi_y = d.ax_.get_ylim()
    assert lo_y == pytest.approx(norm.ppf(1e-4)) and hi_y == pytest.approx(norm.ppf(0.999))
    np.testing.assert_allclose(d.ax_.get_yticks(), norm.ppf([t for t in DET_TICKS if t >= 1e-4]))
    x, y = d.line_.get_data()
    assert np.isfinite(x).all() and np.isfinite(y).all()
    rep = metrics.VerificationReport.from_scores(g, i, confidence=None)
    d2 = DETDisplay.from_report(rep, name="again", ax=d.ax_)
    assert d2.ax_ is d.ax_ and len(d.ax_.lines) == 2


def test_roc_hist_displays(scores, tmp_path: Path) -> None:
    g, i = scores
    r = ROCDisplay.from_scores(g, i, name="m")
    assert r.ax_.get_xscale() == "log" and "AUC" in r.line_.get_label()
    _save(r, tmp_path / "roc.png")
    rep = metrics.VerificationReport.from_scores(g, i, confidence=None)
    _save(ROCDisplay.from_report(rep), tmp_path / "roc2.png")
    h = ScoreHistogramDisplay.from_scores(g, i, threshold=1.2, bins=50)
    assert h.threshold_line_ is not None and h.mated_hist.size == 50
    assert np.sum(h.mated_hist * np.diff(h.edges)) == pytest.approx(1.0)
    _save(h, tmp_path / "hist.png")
    h2 = ScoreHistogramDisplay.from_report(metrics.ScoreCounts.from_scores(g, i), bins=50)
    np.testing.assert_allclose(h2.nonmated_hist, h.nonmated_hist)


def test_cmc_and_group_displays(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gallery = np.arange(30)
    probes = rng.integers(0, 30, 100)
    s = rng.normal(size=(100, 30))
    s[np.arange(100), probes] += 2
    c = CMCDisplay.from_scores(s, probes, gallery, max_rank=10, name="id")
    assert c.line_.get_xdata().tolist() == list(range(1, 11))
    _save(c, tmp_path / "cmc.png")
    _save(CMCDisplay.from_report(metrics.cmc(s, probes, gallery)), tmp_path / "cmc2.png")
    sc = rng.normal(size=400)
    mated = rng.random(400) < 0.3
    groups = rng.choice(["f", "m", "x"], 400)
    b = GroupBarDisplay.from_scores(sc, mated, 0.5, groups)
    assert len(b.fmr_bars_) == 3 and [t.get_text() for t in b.ax_.get_xticklabels()] == ["f", "m", "x"]
    _save(b, tmp_path / "groups.png")
    _save(GroupBarDisplay.from_report(fairness.group_error_rates(sc, mated, 0.5, groups)), tmp_path / "g2.png")
