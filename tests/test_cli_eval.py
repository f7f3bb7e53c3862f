"""``faceprint eval run | scores`` end to end on real photographs: report folders, the cache, errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.cli import main
from faceprint.evaluation import metrics
from faceprint.evaluation.cache import EmbeddingCache
from faceprint.evaluation.scorefiles import read_scores

from .conftest import data_path
from .evaluation.test_report import md_headline, pct

pytest.importorskip("matplotlib")

REPORT_FILES = ("report.md", "report.html", "metrics.json", "scores.csv", "det.png", "roc.png", "scores.png")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], capture_output=True, text=True, timeout=300)


def check_report(out: Path) -> dict:
    """Every file is there and report.md shows the numbers of metrics.json."""
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    md = (out / "report.md").read_text()
    rows = md_headline(md)
    assert {r["metric"]: (r["value"], r["ci"]) for r in m["headline"]} == rows
    v = m["verification"]
    assert pct(rows["EER"][0]) == pytest.approx(v["eer"], abs=5e-6)
    assert float(rows["AUC"][0]) == pytest.approx(v["auc"], abs=5e-7)
    assert rows["Comparisons"][0] == f"{v['n_mated']:,} mated + {v['n_nonmated']:,} non-mated"
    assert m["command"] in md and m["command"].startswith("faceprint eval ")
    assert "data:image/png;base64," in (out / "report.html").read_text()
    return m


@pytest.fixture(scope="module")
def lfw_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the LFW tests: the View 1 test reuses the CSV test's embeddings."""
    return tmp_path_factory.mktemp("lfw-cache")


def dev_lines(name: str, n: int) -> list[str]:
    """The first ``n`` mated and first ``n`` non-mated lines of an LFW View 1 pairs file."""
    lines = (data_path("lfw_view1") / name).read_text().splitlines()
    half = int(lines[0])
    return lines[1 : 1 + n] + lines[1 + half : 1 + half + n]


@pytest.mark.slow
def test_folder_protocol_report_and_rerun_from_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = data_path("faces_small")
    cache = tmp_path / "cache"
    args = ["eval", "run", "--protocol", "folder", "--data", str(data), "--cache", str(cache), "--workers", "1"]
    assert main([*args, "-o", str(tmp_path / "r1"), "--json", "--bootstrap", "200"]) == 0
    summary = json.loads(capsys.readouterr().out)
    m1 = check_report(tmp_path / "r1")
    assert summary["eer"] == m1["verification"]["eer"] and summary["model"].startswith("dlib-resnet-v1@")
    ex = m1["provenance"]["execution"]
    assert ex["embedding"]["computed"] == 17 and ex["cache"]["writes"] == 17
    assert m1["failures"]["images"] == 17 and m1["n_comparisons"] == 17 * 16 // 2
    assert m1["threshold"]["source"] == "operating-point"
    assert m1["provenance"]["dataset"]["images"]["count"] == 17
    assert m1["provenance"]["models"]["embedding_model"] == m1["model"]

    # the same command again: every image comes from the cache, nothing is embedded twice
    assert main([*args, "-o", str(tmp_path / "r2"), "--bootstrap", "200"]) == 0
    m2 = check_report(tmp_path / "r2")
    ex2 = m2["provenance"]["execution"]
    assert ex2["embedding"]["computed"] == 0 and ex2["embedding"]["cached"] == 17
    assert ex2["cache"]["hits"] == 17 and ex2["cache"]["writes"] == 0
    with EmbeddingCache(cache) as c:
        assert len(c) == 17
    assert m2["verification"] == m1["verification"]
    assert m2["provenance"]["dataset"]["images"]["sha256"] == m1["provenance"]["dataset"]["images"]["sha256"]


@pytest.mark.slow
def test_csv_protocol_on_lfw_pairs_with_folds_and_groups(tmp_path: Path, lfw_cache: Path) -> None:
    rows = ["image_a,image_b,mated,fold,subject_a,subject_b"]
    for k, line in enumerate(dev_lines("pairsDevTest.txt", 10)):
        f = line.split()
        if len(f) == 3:
            a, b, sa, sb = f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[0]}/{f[0]}_{int(f[2]):04d}.jpg", f[0], f[0]
        else:
            a, b, sa, sb = f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[2]}/{f[2]}_{int(f[3]):04d}.jpg", f[0], f[2]
        rows.append(f"{a},{b},{int(len(f) == 3)},{k % 2},{sa},{sb}")
    proto = tmp_path / "pairs20.csv"
    proto.write_text("\n".join(rows) + "\n")
    people = {r.split(",")[4] for r in rows[1:]} | {r.split(",")[5] for r in rows[1:]}
    labels = tmp_path / "groups.csv"
    labels.write_text("identity,group\n" + "".join(f"{p},{'A-J' if p[0] <= 'J' else 'K-Z'}\n" for p in sorted(people)))
    out = tmp_path / "rep"
    code = main(
        [
            "eval", "run", "--protocol", "csv", "--data", str(data_path("lfw_view1")), "--pairs", str(proto),
            "--labels", str(labels), "--cache", str(lfw_cache), "--workers", "1", "--bootstrap", "100", "-o", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    m = check_report(out)
    assert m["n_comparisons"] == 20 and m["kfold"] is not None and len(m["kfold"]["accuracies"]) == 2
    md = (out / "report.md").read_text()
    assert "Accuracy (2-fold)" in md
    files = {f["path"]: f["sha256"] for f in m["provenance"]["dataset"]["files"]}
    assert files[str(proto)] == hashlib.sha256(proto.read_bytes()).hexdigest() and str(labels) in files
    assert m["fairness"] is not None and {g["group"] for g in m["fairness"]["groups"]} <= {"A-J", "K-Z"}
    assert (out / "groups.png").is_file()
    table = read_scores(out / "scores.csv", allow_nan=True)
    assert len(table) == 20 and table.mated.sum() == 10


@pytest.mark.slow
def test_lfw_view1_chooses_the_threshold_on_devtrain(tmp_path: Path, lfw_cache: Path) -> None:
    pairs = tmp_path / "view1"
    pairs.mkdir()
    (pairs / "pairsDevTrain.txt").write_text("6\n" + "\n".join(dev_lines("pairsDevTrain.txt", 6)) + "\n")
    (pairs / "pairsDevTest.txt").write_text("10\n" + "\n".join(dev_lines("pairsDevTest.txt", 10)) + "\n")
    out = tmp_path / "rep"
    args = ["eval", "run", "--protocol", "lfw", "--data", str(data_path("lfw_view1")), "--pairs", str(pairs)]
    assert main([*args, "--cache", str(lfw_cache), "--workers", "1", "--bootstrap", "100", "-o", str(out)]) == 0
    m = check_report(out)
    assert m["protocol"] == "lfw-view1-devtest" and m["n_comparisons"] == 20
    cal = m["calibration"]
    assert cal["name"] == "lfw-view1-devtrain" and cal["verification"]["n_mated"] + cal["failures"]["failed_mated"] == 6
    assert m["threshold"]["source"] == "calibration" and "lfw-view1-devtrain" in m["threshold"]["description"]
    assert m["accuracy"]["threshold"] == m["threshold"]["value"]
    assert (out / "scores_calibration.csv").is_file()
    assert [Path(f["path"]).name for f in m["provenance"]["dataset"]["files"]] == [
        "pairsDevTrain.txt",
        "pairsDevTest.txt",
    ]
    md = (out / "report.md").read_text()
    assert "## Score sets" in md and "lfw-view1-devtrain (calibration)" in md
    emb = m["provenance"]["execution"]["embedding"]
    assert emb["cached"] + emb["computed"] == emb["images"] == m["provenance"]["dataset"]["images"]["count"]


def test_eval_scores_on_a_bob_4_column_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(7)
    lines = []
    gen, imp = rng.normal(0.8, 0.1, 60), rng.normal(0.3, 0.1, 240)
    for i, s in enumerate(gen):
        lines.append(f"s{i % 12} s{i % 12} s{i % 12}_p{i} {float(s)!r}")
    for i, s in enumerate(imp):
        lines.append(f"s{i % 12} s{(i + 1 + i % 5) % 12} s{(i + 1 + i % 5) % 12}_p{i} {float(s)!r}")
    f = tmp_path / "dev.scores"
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "rep"
    assert main(["eval", "scores", str(f), "-o", str(out), "--format", "4col", "--bootstrap", "100", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    m = check_report(out)
    v = m["verification"]
    assert v["n_mated"] == 60 and v["n_nonmated"] == 240
    assert v["eer"] == pytest.approx(metrics.eer(gen, imp).eer, abs=1e-12) == summary["eer"]
    assert m["model"] is None and m["protocol"] == "dev.scores"
    assert m["provenance"]["dataset"]["files"][0]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    # the report's own scores.csv evaluates to the same numbers
    assert main(["eval", "scores", str(out / "scores.csv"), "-o", str(tmp_path / "again"), "--bootstrap", "100"]) == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["verification"] == v


def test_bad_input_gives_a_clear_error_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "o")
    missing = run_cli("eval", "run", "--protocol", "folder", "--data", str(tmp_path / "no_such_folder"), "-o", out)
    assert missing.returncode == 2, missing.stderr
    assert "no_such_folder does not exist" in missing.stderr and "Traceback" not in missing.stderr

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pairs.txt").write_text("1 1\nAaron_Peirsol\t1\t2\nAaron_Peirsol 1 Abdullah_Gul 13 14\n")
    lfw = str(data_path("lfw_view1"))
    assert main(["eval", "run", "--protocol", "lfw", "--data", lfw, "--pairs", str(bad), "-o", out]) == 2
    err = capsys.readouterr().err
    assert "pairs.txt:3" in err and "not an LFW pairs line" in err

    csv = tmp_path / "p.csv"
    csv.write_text("image_a,image_b\nx.jpg,y.jpg\n")
    assert main(["eval", "run", "--protocol", "csv", "--data", lfw, "--pairs", str(csv), "-o", out]) == 2
    assert "header must name image_a,image_b,mated" in capsys.readouterr().err

    assert main(["eval", "run", "--protocol", "lfw", "--data", str(data_path("faces_small")), "-o", out]) == 2
    assert "expected pairs.txt (View 2) or pairsDevTrain.txt + pairsDevTest.txt" in capsys.readouterr().err

    assert main(["eval", "scores", str(tmp_path / "none.csv"), "-o", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing is written before the input is checked
