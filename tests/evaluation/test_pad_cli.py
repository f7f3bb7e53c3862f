"""``faceprint pad train`` and ``faceprint pad eval`` end to end on real LFW photos and synthetic attacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceprint.attacks.synthetic import build_attack_set
from faceprint.cli import main
from faceprint.evaluation.pad import read_bob_pad_scores

from ..conftest import data_path

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow

PEOPLE = ("Aaron_Peirsol", "Abdullah_Gul", "Alejandro_Toledo")


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pad")
    bona = root / "bona"
    for name in PEOPLE:
        (bona / name).mkdir(parents=True)
        for p in sorted(data_path("lfw_view1", name).glob("*.jpg"))[:4]:
            shutil.copy(p, bona / name / p.name)
    build_attack_set(sorted(bona.rglob("*.jpg")), root / "atk", root=bona, species=("print", "replay"), seed=1)
    return root


def pad(sets: Path, command: str, attack: str, *rest: str) -> int:
    """``faceprint pad COMMAND --bona-fide <sets>/bona --attack ATTACK REST...``, in this process."""
    return main(["pad", command, "--bona-fide", str(sets / "bona"), "--attack", attack, *rest])


def test_train_then_eval_writes_the_iso_report(sets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = sets / "model.json"
    code = pad(sets, "train", str(sets / "atk" / "print"), "-o", str(model), "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and model.is_file() and out["training"]["n_bona_fide"] >= 10
    report = sets / "report"
    replay = str(sets / "atk" / "replay")
    code = pad(
        sets,
        "eval",
        f"{sets / 'atk' / 'print'}:print",
        "--attack",
        replay,
        "--model",
        str(model),
        "--iapmr",
        "-o",
        str(report),
    )
    md = capsys.readouterr().out
    assert code == 0
    for name in ("report.md", "report.html", "report.json", "scores.txt", "det.png", "scores.png"):
        assert (report / name).is_file(), name
    doc = json.loads((report / "report.json").read_text())
    assert doc["label"] == "synthetic attacks" and doc["synthetic_species"] == ["print", "replay"]
    n = len(list((sets / "bona").rglob("*.jpg")))
    assert set(doc["attacks"]) == {"print", "replay"} and doc["bona_fide"]["n"] == n
    at = doc["at_threshold"]
    assert at["apcer_max"] == max(a["rate"] for a in at["apcer"].values())
    # the species it was trained on is detected
    assert at["apcer"]["print"]["rate"] <= 0.25
    assert "synthetic attacks" in md and "APCER_AP" in md and "BPCER20" in md
    assert doc["iapmr"]["species"]["print"]["n"] > 0
    bona, attacks = read_bob_pad_scores(report / "scores.txt")
    assert len(bona.keys) == n - doc["bona_fide"]["no_response"] and sorted(attacks) == ["print", "replay"]


def test_errors_are_one_line_and_an_exit_code(sets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(sets / "missing.json")
    code = pad(sets, "eval", str(sets / "atk" / "print"), "--model", missing, "-o", str(sets / "r2"))
    err = capsys.readouterr().err
    assert code == 5 and "missing.json" in err and "Traceback" not in err
    code = pad(sets, "eval", str(sets / "nowhere"), "--model", missing, "-o", str(sets / "r3"))
    assert code in (2, 5) and "Traceback" not in capsys.readouterr().err
    code = pad(sets, "train", str(sets / "nowhere"), "-o", str(sets / "m2.json"))
    assert code == 2 and "nowhere" in capsys.readouterr().err
