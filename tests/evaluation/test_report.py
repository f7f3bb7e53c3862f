"""Evaluation results and report folders, from score tables (no models needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, DataFormatError
from faceprint.evaluation import metrics
from faceprint.evaluation.protocols import IdentificationProtocol, ImageRef, TemplateSet
from faceprint.evaluation.report import (
    EvaluationResult,
    evaluate_identification,
    evaluate_scores,
    headline,
    image_list_digest,
    open_protocol,
    write_report,
)
from faceprint.evaluation.scorefiles import ScoreTable, read_scores

from ..conftest import data_path

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"
DLIB_MODEL = "dlib-resnet-v1@1-55533b28a958"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def synthetic_table(n: int = 300, seed: int = 0, *, nan: bool = True, groups: bool = True) -> ScoreTable:
    """n mated + n non-mated scores of 30 subjects; two scores NaN (failed to acquire)."""
    rng = np.random.default_rng(seed)
    subj = np.array([f"s{i % 30:02d}" for i in range(2 * n)])
    score = np.r_[rng.normal(2.0, 1.0, n), rng.normal(0.0, 1.0, n)]
    if nan:
        score[[5, n + 7]] = np.nan
    mated = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    grp = np.where(np.arange(2 * n) % 3 == 0, "A", "B") if groups else None
    ref_subj = np.where(mated, subj, np.roll(subj, 1))
    return ScoreTable(
        probe=np.array([f"p{i}" for i in range(2 * n)]),
        reference=np.array([f"r{i}" for i in range(2 * n)]),
        score=score,
        mated=mated,
        probe_subject=subj,
        reference_subject=ref_subj,
        group=grp,
    )


def md_headline(md: str) -> dict[str, tuple[str, str]]:
    """metric → (value, ci) from the first table of report.md."""
    body = md.split("## Headline", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("| metric"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def pct(text: str) -> float:
    return float(text.rstrip("%")) / 100


def test_report_folder_numbers_match_metrics_json(tmp_path: Path) -> None:
    table = synthetic_table()
    folds = np.arange(len(table)) % 10
    result = evaluate_scores(table, name="synthetic", folds=folds, n_bootstrap=200)
    files = write_report(result, tmp_path / "rep", command="faceprint eval scores s.csv -o rep")
    out = tmp_path / "rep"
    for name in ("report.md", "report.html", "metrics.json", "scores.csv", "det.png", "roc.png", "scores.png"):
        assert (out / name).is_file() and files[name] == out / name
    assert (out / "groups.png").is_file()  # the table has groups
    for png in out.glob("*.png"):
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5000

    m = json.loads((out / "metrics.json").read_text())
    md = (out / "report.md").read_text()
    rows = md_headline(md)
    v = m["verification"]
    assert m["command"] == "faceprint eval scores s.csv -o rep" and "faceprint eval scores s.csv -o rep" in md
    # the headline in the markdown is the one in metrics.json, and its numbers are the raw metrics
    assert {r["metric"]: (r["value"], r["ci"]) for r in m["headline"]} == rows
    assert pct(rows["EER"][0]) == pytest.approx(v["eer"], abs=5e-6)
    lo, hi = (pct(x) for x in rows["EER"][1].strip("[]").split(", "))
    assert (lo, hi) == (pytest.approx(v["eer_ci"][0], abs=5e-6), pytest.approx(v["eer_ci"][1], abs=5e-6))
    assert lo <= v["eer"] <= hi
    assert float(rows["AUC"][0]) == pytest.approx(v["auc"], abs=5e-7)
    for p in v["fnmr_at_fmr"]:
        label = f"FNMR @ FMR={p['target_fmr']:.0e}".replace("e-0", "e-")
        if p["fnmr"] is None:
            assert rows[label][0] == "not reported" and "rule of three" in p["reason"] and p["reason"] in md
        else:
            assert pct(rows[label][0]) == pytest.approx(p["fnmr"], abs=5e-6)
    kf = m["kfold"]
    mean, std = (pct(x) for x in rows["Accuracy (10-fold)"][0].split(" ± "))
    assert mean == pytest.approx(kf["mean"], abs=5e-5) and std == pytest.approx(kf["std"], abs=5e-5)
    # failed comparisons: out of the curves, in the system-level rates
    assert v["n_mated"] + v["n_nonmated"] == len(table) - 2
    assert m["failures"]["failed_mated"] == 1 and m["failures"]["failed_nonmated"] == 1
    fmr, fnmr = (pct(x) for x in rows["System FMR / FNMR"][0].split(" / "))
    assert fmr == pytest.approx(m["system"]["fmr"], abs=5e-6) and fnmr == pytest.approx(m["system"]["fnmr"], abs=5e-6)
    # the raw numbers agree with the metrics module on the same scores
    ref = metrics.eer(table.genuine, table.impostor)
    assert v["eer"] == pytest.approx(ref.eer, abs=1e-12)
    assert m["fairness"]["groups"][0]["group"] == "A" and m["fairness"]["fdr"] is not None
    assert m["provenance"]["software"]["numpy"] == np.__version__
    assert m["threshold"]["source"] == "eer"  # no model, no calibration: the report says it is optimistic
    assert "optimistic" in md
    # scores.csv holds every attempted comparison, nan for the failed ones
    back = read_scores(out / "scores.csv", allow_nan=True)
    np.testing.assert_array_equal(back.score, table.score)
    np.testing.assert_array_equal(back.mated, table.mated)
    # report.html is self-contained: figures embedded as data URIs, nothing fetched
    page = (out / "report.html").read_text()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == len(list(out.glob("*.png"))) and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "http" not in page.split("<body>", 1)[0]
    assert rows["EER"][0] in page


def test_threshold_order_given_calibration_model_eer() -> None:
    table = synthetic_table(groups=False)
    cal = synthetic_table(seed=1, nan=False, groups=False)
    assert evaluate_scores(table, threshold=0.5, n_bootstrap=0).threshold.source == "given"
    r = evaluate_scores(table, calibration=cal, calibration_name="dev", model=DLIB_MODEL, n_bootstrap=0)
    assert r.threshold is not None and r.threshold.source == "calibration"
    expected = metrics._best_accuracy_threshold(cal.score, cal.mated)
    assert r.threshold.value == expected
    assert r.calibration is not None and r.calibration.accuracy is not None
    assert r.calibration.accuracy.value >= r.accuracy.value - 0.1  # chosen there: at least as good there
    r = evaluate_scores(table, model=DLIB_MODEL, n_bootstrap=0)
    from faceprint.scoring import operating_point

    calibrated = operating_point("dlib-resnet-v1", "fmr=0.001").threshold  # the manifest's, recalibrated at times
    assert r.threshold.source == "operating-point" and r.threshold.value == pytest.approx(calibrated)
    r = evaluate_scores(table, model="dlib-resnet-v1@9-000000000000", n_bootstrap=0)  # another version
    assert r.threshold.source == "eer"
    with pytest.raises(ConfigurationError, match="finite"):
        evaluate_scores(table, threshold=float("nan"), n_bootstrap=0)


def test_accuracy_counts_failures_as_non_matches() -> None:
    t = ScoreTable(
        probe=np.array(["a", "b", "c", "d"]),
        reference=np.array(["e", "f", "g", "h"]),
        score=np.array([0.9, np.nan, 0.1, np.nan]),
        mated=np.array([True, True, False, False]),
    )
    r = evaluate_scores(t, threshold=0.5, n_bootstrap=0)
    assert r.accuracy is not None and r.system is not None
    # correct: a (match), c (non-match), d (failed non-mated = non-match); wrong: b (failed mated)
    assert r.accuracy.value == 0.75 and r.accuracy.comparison_value == 1.0
    assert r.system.fnmr == 0.5 and r.system.fmr == 0.0
    assert r.failures.failed == 2 and r.failures.probes is None
    rows = {x["metric"]: x for x in headline(r)}
    assert rows["Failed comparisons"]["value"] == "2 of 4"


def test_without_subject_ids_the_interval_says_it_is_comparison_level() -> None:
    t = synthetic_table(groups=False)
    t = ScoreTable(t.probe, t.reference, t.score, t.mated)
    r = evaluate_scores(t, n_bootstrap=100)
    assert r.verification is not None and r.verification.eer.ci is not None
    assert "comparison-level" in (r.verification.eer.ci_method or "")
    r = evaluate_scores(t, n_bootstrap=0)
    assert r.verification.eer.ci is None


def test_no_mated_scores_is_a_clear_error() -> None:
    t = synthetic_table(groups=False)
    only = ScoreTable(t.probe[~t.mated], t.reference[~t.mated], t.score[~t.mated], t.mated[~t.mated])
    with pytest.raises(ConfigurationError, match="mated and non-mated"):
        evaluate_scores(only)


def test_identification_report_has_cmc_and_open_set_rates(tmp_path: Path) -> None:
    # 6 gallery templates (g0..g5), 8 probe templates: 6 mated (one without a face), 2 of unknown people
    n_t = 14
    subjects = np.array([f"g{i}" for i in range(6)] + [f"g{i}" for i in range(6)] + ["x0", "x1"])
    images = [ImageRef(key=f"img{i}", data=b"x") for i in range(n_t)]
    templates = TemplateSet(
        ids=np.arange(100, 100 + n_t),
        image=np.arange(n_t),
        template=np.arange(n_t),
        media=np.arange(n_t),
        subjects=subjects,
    )
    gallery = np.arange(6)
    probes = np.arange(6, n_t)
    proto = IdentificationProtocol("toy-1:N", images, templates, {"G1": gallery}, probes)
    rng = np.random.default_rng(0)
    m = rng.uniform(0.0, 0.5, (len(probes), len(gallery)))
    for i in range(6):
        m[i, i] = 0.9 if i != 2 else 0.3  # probe 2's mate is not ranked first
    m[5] = np.nan  # g5's probe template has no face
    ident, table, failures = evaluate_identification(proto, {"G1": m})
    g = ident.galleries["G1"]
    assert g.n_mated_probes == 5 and g.n_nonmated_probes == 2 and g.probes_failed == 1
    assert g.cmc is not None and g.cmc.rate_at(1) == pytest.approx(4 / 5) and g.cmc.rate_at(6) == 1.0
    assert g.open_set is not None and len(g.fnir_at_fpir) == 3
    assert failures.unit == "template" and failures.probes_failed == 1
    assert table.mated.sum() == 6  # one mate row per mated probe, and the failed probe's mate (nan)
    assert np.isnan(table.score[table.mated]).sum() == 1
    result = EvaluationResult(
        protocol=proto.name,
        model=None,
        settings={},
        scores=table,
        failures=failures,
        verification=None,
        identification=ident,
    )
    write_report(result, tmp_path, command="x")
    assert (tmp_path / "cmc.png").read_bytes().startswith(PNG)
    md = (tmp_path / "report.md").read_text()
    assert "Rank-1 / rank-5 (G1)" in md and "80.00% / 100.00%" in md
    assert json.loads((tmp_path / "metrics.json").read_text())["identification"]["galleries"]["G1"][
        "rank1"
    ] == g.cmc.rate_at(1)


def test_image_list_digest_content_and_stat(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    refs = [ImageRef.from_path(a, tmp_path), ImageRef.from_path(b, tmp_path)]
    d = image_list_digest(refs)
    assert d["count"] == 2 and d["missing"] == 0 and d["method"] == "content"
    assert image_list_digest(refs[::-1])["sha256"] == d["sha256"]  # order does not matter
    assert image_list_digest(refs, "stat")["sha256"] != d["sha256"]
    b.write_bytes(b"TWO")
    assert image_list_digest(refs)["sha256"] != d["sha256"]
    b.unlink()
    assert image_list_digest(refs)["missing"] == 1
    with pytest.raises(ConfigurationError):
        image_list_digest(refs, "mtime")  # type: ignore[arg-type]


def test_open_protocol_finds_lfw_views_and_refuses_bad_input(tmp_path: Path) -> None:
    root = data_path("lfw_view1")
    v1 = open_protocol("lfw", root)
    assert v1.calibration is not None and v1.calibration.name == "lfw-view1-devtrain"
    assert len(v1.calibration) == 2200 and len(v1.protocol) == 1000 and v1.protocol.folds is None
    assert [p.name for p in v1.files] == ["pairsDevTrain.txt", "pairsDevTest.txt"]
    # View 2: pairs.txt with "folds per_fold" header → 10 folds
    lines = (root / "pairsDevTest.txt").read_text().splitlines()[1:]
    view2 = tmp_path / "pairs.txt"
    view2.write_text("2 5\n" + "\n".join(lines[:5] + lines[500:505] + lines[5:10] + lines[505:510]) + "\n")
    v2 = open_protocol("lfw", root, pairs=tmp_path)
    assert v2.calibration is None and v2.protocol.n_folds == 2 and len(v2.protocol) == 20
    with pytest.raises(ConfigurationError, match="does not exist"):
        open_protocol("folder", tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="pairs.txt"):
        open_protocol("lfw", data_path("faces_small"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pairs.txt").write_text("1 1\nAaron_Peirsol 1 2\nthis line has five fields\n")
    with pytest.raises(DataFormatError, match=r"pairs.txt:3"):
        open_protocol("lfw", root, pairs=bad)
    with pytest.raises(ConfigurationError, match="unknown protocol kind"):
        open_protocol("lfw2", root)
    with pytest.raises(ConfigurationError, match="identification"):
        open_protocol("folder", root, task="identification")


def test_labels_give_groups_to_an_lfw_protocol(tmp_path: Path) -> None:
    root = data_path("lfw_view1")
    labels = tmp_path / "groups.csv"
    labels.write_text("identity,group\nAbdullah_Gul,x\nAaron_Peirsol,y\n")
    src = open_protocol("lfw", root, labels=labels)
    g = src.protocol.groups
    assert g is not None and src.files[-1] == labels
    first = src.protocol.subject_a[0]
    assert first == "Abdullah_Gul" and g[0] == "x"
    assert src.calibration is not None and src.calibration.groups is not None and src.calibration.groups[0] == "y"


def test_importing_evaluation_loads_no_matplotlib_or_dask() -> None:
    code = (
        "import sys, faceprint.evaluation as e; e.EvaluationResult; e.VerificationReport; e.DETDisplay; e.Pair;"
        "bad = [m for m in ('matplotlib', 'dask', 'distributed') if m in sys.modules]; sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    import faceprint.evaluation as ev

    assert set(ev.__all__) >= {"Pair", "read_lfw_pairs", "write_report", "run_protocol", "ScoreTable", "cmc"}
    for name in ev.__all__:
        assert getattr(ev, name) is not None


def test_package_reexports_match_each_submodule_all() -> None:
    """The lazy re-export table is written by hand (so nothing is imported early): keep it in step."""
    import importlib

    import faceprint.evaluation as ev

    for module, names in ev._MODULES.items():
        mod = importlib.import_module(f"faceprint.evaluation.{module}")
        assert set(names) == set(mod.__all__), module
