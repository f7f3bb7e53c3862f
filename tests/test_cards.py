"""Model cards: figures only from real evaluation reports, each recorded by its sha256."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from faceprint.cli import main
from faceprint.errors import ConfigurationError, DataFormatError
from faceprint.evaluation.cards import build_card, render_html, render_markdown, write_card

REPORTS = Path(__file__).resolve().parents[1] / "docs" / "model-cards" / "reports"
GENDER = REPORTS / "dlib-resnet-v1-view1-gender-same-group.json"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _figures(report: dict) -> list[str]:
    """The figures a card must show for a verification report with groups, formatted from its JSON."""
    v = report["verification"]
    out = [_pct(v["eer"]), _pct(report["accuracy"]["value"])]
    out += [_pct(p["fnmr"]) for p in v["fnmr_at_fmr"] if p["fnmr"] is not None]
    f = report.get("fairness")
    if f:
        out += [_pct(g["fmr"]) for g in f["groups"]] + [_pct(g["fnmr"]) for g in f["groups"]]
        out += [f"FDR {f['fdr']:.4f}", f"GARBE {f['garbe']:.4f}"]
    return out


def test_card_shows_the_figures_and_digest_of_a_real_report() -> None:
    raw = GENDER.read_bytes()
    report = json.loads(raw)
    card = build_card("dlib-resnet-v1", [GENDER])
    for text in (render_markdown(card), render_html(card)):
        assert hashlib.sha256(raw).hexdigest() in text
        for fig in _figures(report):
            assert fig in text, fig
        assert "not evaluated" not in text
        assert "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30" in text  # the model file
        assert "Non-mated pairs are demographically matched" in text


def test_no_report_says_not_evaluated_and_states_no_figure() -> None:
    md = render_markdown(build_card("dlib-resnet-v1"))
    metrics = md.split("## Metrics", 1)[1].split("## Caveats", 1)[0]
    assert "not evaluated" in metrics
    assert "%" not in metrics and "EER" not in metrics


def test_predicted_groups_are_said_to_be_predicted_with_the_models_error() -> None:
    md = render_markdown(
        build_card("dlib-resnet-v1", [REPORTS / "dlib-resnet-v1-view1-predicted-gender-same-group.json"])
    )
    assert "The groups are PREDICTED by the attribute model dlib-age-gender" in md
    err = json.loads((REPORTS / "dlib-resnet-v1-view1-predicted-gender-same-group.json").read_text())["provenance"][
        "groups"
    ]["attribute_models"]["predicted-gender"]["measured_error"]["error"]
    assert _pct(err["rate"]) in md


def test_a_report_of_another_model_is_refused(tmp_path: Path) -> None:
    d = json.loads(GENDER.read_text())
    d["model"] = "facenet-20180408@1-abc"
    other = tmp_path / "metrics.json"
    other.write_text(json.dumps(d))
    with pytest.raises(ConfigurationError, match="evaluates facenet-20180408, not dlib-resnet-v1"):
        build_card("dlib-resnet-v1", [tmp_path])


def test_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataFormatError):
        build_card("dlib-resnet-v1", [tmp_path / "x.json"])
    with pytest.raises(ConfigurationError, match="no evaluation report"):
        build_card("dlib-resnet-v1", [tmp_path / "missing"])
    with pytest.raises(ConfigurationError, match=r"\.md or \.html"):
        write_card(build_card("dlib-resnet-v1"), tmp_path / "card.pdf")


def test_cli_writes_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(GENDER, tmp_path / "metrics.json")
    out = tmp_path / "card.html"
    assert main(["models", "card", "dlib-resnet-v1", "--eval", str(tmp_path), "-o", str(out)]) == 0
    assert hashlib.sha256(GENDER.read_bytes()).hexdigest() in out.read_text()
    assert main(["models", "card", "no-such-model", "-o", str(tmp_path / "c.md")]) != 0
    assert "no-such-model" in capsys.readouterr().err


@pytest.mark.slow
def test_card_from_a_small_real_evaluation(tmp_path: Path) -> None:
    """Evaluate the faces_small photographs (with groups and quality), write the report, build the card from it."""
    from faceprint.evaluation import add_quality, open_protocol, run_protocol, write_report
    from tests.conftest import data_path

    labels = tmp_path / "labels.csv"
    labels.write_text(
        "identity,group\nobama,a\nbiden,a\nlin_manuel_miranda,a\nkit_harington,b\nrose_leslie,b\nalex_lacamoire,b\n"
    )
    src = open_protocol("folder", data_path("faces_small"), labels=labels)
    settings = {"detector": "dlib-hog", "embedder": "dlib-resnet-onnx"}
    result = run_protocol(src.protocol, settings, None, None, n_bootstrap=50, threshold=0.93)
    result = add_quality(result, src.protocol, settings, quality="fiqa-fast")
    write_report(result, tmp_path / "rep", command="test")
    raw = (tmp_path / "rep" / "metrics.json").read_bytes()
    md = render_markdown(build_card("dlib-resnet-v1", [tmp_path / "rep"]))
    assert hashlib.sha256(raw).hexdigest() in md
    report = json.loads(raw)
    for fig in _figures(report):
        assert fig in md, fig
    assert "Quality (EDC, ISO/IEC 29794-1)" in md
    for curve in report["quality"]["curves"]:
        assert f"| {curve['name']} | {_pct(curve['fnmr0'])} |" in md
