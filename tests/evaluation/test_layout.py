"""The evaluation package after the split of issue 9: one registry of protocol kinds, one opener,
old import paths kept for one release with a DeprecationWarning, DET axes owned by the plots."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import faceprint.evaluation as ev
from faceprint.errors import ConfigurationError
from faceprint.evaluation import protocols
from faceprint.evaluation.protocols import ProtocolKind, ProtocolSource, open_protocol, protocol_kinds

from ..conftest import data_path


@pytest.mark.parametrize(
    ("old_module", "name", "new_module"),
    [
        ("report", "run_protocol", "runner"),
        ("report", "open_protocol", "protocols"),
        ("report", "EvaluationResult", "results"),
        ("report", "evaluate_scores", "evaluate"),
        ("report", "image_list_digest", "provenance"),
        ("runner", "embed_images", "embedding"),
        ("runner", "score_protocol", "comparison"),
    ],
)
def test_old_import_paths_still_work_with_a_warning(old_module: str, name: str, new_module: str) -> None:
    import importlib

    old = importlib.import_module(f"faceprint.evaluation.{old_module}")
    new = importlib.import_module(f"faceprint.evaluation.{new_module}")
    with pytest.warns(DeprecationWarning, match=f"moved to faceprint.evaluation.{new_module}"):
        got = getattr(old, name)
    assert got is getattr(new, name) is getattr(ev, name)


def test_paths_that_did_not_move_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from faceprint.evaluation.protocols import read_lfw_pairs  # noqa: F401
        from faceprint.evaluation.report import headline, write_report  # noqa: F401
        from faceprint.evaluation.runner import run_protocol  # noqa: F401


def test_protocol_kinds_are_one_registry_the_cli_offers() -> None:
    from faceprint.cli.evaluate import ProtocolChoice

    kinds = protocol_kinds()
    assert list(kinds) == ["lfw", "bin", "ijb", "folder", "csv"]
    assert [c.value for c in ProtocolChoice] == list(kinds)
    assert all(k.data_help.startswith(f"{name}:") for name, k in kinds.items())
    with pytest.warns(DeprecationWarning):
        assert ev.PROTOCOL_KINDS == tuple(kinds)
    assert not hasattr(protocols, "load_protocol")  # one way in: open_protocol


def test_a_registered_kind_opens_through_open_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.evaluation.protocols import registry

    monkeypatch.setattr(registry, "_KINDS", dict(protocol_kinds()))  # this test's kind goes away after it
    calls: list[Path] = []

    def open_one_pair(data: Path, *, pairs: Path | None, labels: Path | None, task: str, seed: int) -> ProtocolSource:
        calls.append(data)
        p = protocols.read_csv_protocol(data)
        return ProtocolSource("one-pair-test", p, (data,), None, "a test kind")

    protocols.register_protocol_kind(ProtocolKind("one-pair-test", open_one_pair, "one-pair-test: a CSV."))
    f = tmp_path / "p.csv"
    f.write_text("image_a,image_b,mated\na.jpg,b.jpg,1\n")
    src = open_protocol("one-pair-test", f)
    assert calls == [f] and len(src.protocol) == 1 and src.kind == "one-pair-test"
    assert list(protocol_kinds())[-1] == "one-pair-test"  # after the built-ins
    with pytest.raises(ConfigurationError, match="identification is available for --protocol ijb only"):
        open_protocol("one-pair-test", f, task="identification")
    with pytest.raises(ConfigurationError, match="already registered"):
        protocols.register_protocol_kind(ProtocolKind("lfw", open_one_pair, "lfw: another"))


def test_ijb_source_lists_the_files_each_task_reads(tmp_path: Path) -> None:
    from .test_protocols_eval import make_ijb

    root = make_ijb(tmp_path / "IJBC")
    one = open_protocol("ijb", root)
    assert [f.name for f in one.files] == ["ijbc_face_tid_mid.txt", "ijbc_template_pair_label.txt"]
    many = open_protocol("ijb", root, task="identification")
    assert [f.name for f in many.files] == [
        "ijbc_face_tid_mid.txt",
        "ijbc_1N_gallery_G1.csv",
        "ijbc_1N_gallery_G2.csv",
        "ijbc_1N_probe_mixed.csv",
    ]
    assert all(f.is_file() for f in many.files)


def test_lfw_and_ijb_protocols_select_the_central_face_by_default(tmp_path: Path) -> None:
    from .test_protocols_eval import make_ijb

    src = open_protocol("lfw", data_path("lfw_view1"))
    assert src.protocol.select == "central" and src.calibration is not None and src.calibration.select == "central"
    assert src.protocol.subset(np.arange(3)).select == "central"
    assert protocols.read_ijb_verification(make_ijb(tmp_path / "IJBC")).select == "central"
    f = tmp_path / "p.csv"
    f.write_text("image_a,image_b,mated\na.jpg,b.jpg,1\n")
    assert protocols.read_csv_protocol(f).select is None  # unknown: the runner's default
    with pytest.raises(ConfigurationError, match="select="):
        protocols.VerificationProtocol("x", [], np.zeros(0, int), np.zeros(0, int), np.zeros(0, bool), select="all")


def test_det_axes_of_several_curves_are_set_by_the_display() -> None:
    pytest.importorskip("matplotlib")
    from faceprint.evaluation.plots import DET_TICKS, DETDisplay, pyplot

    plt = pyplot()
    fig, ax = plt.subplots()
    wide = DETDisplay(fmr=[0.5, 1e-4, 0.3], fnmr=[0.01, 0.6, 0.2]).plot(ax=ax)
    narrow = DETDisplay(fmr=[0.2, 0.1], fnmr=[0.05, 0.3]).plot(ax=ax)  # fits the axes to itself only
    lo_narrow = ax.get_xlim()[0]
    DETDisplay.fit_axes([wide, narrow])
    ppf = pytest.importorskip("scipy.stats").norm.ppf
    assert ax.get_xlim()[0] == pytest.approx(ppf(1e-4)) and ppf(1e-4) < lo_narrow  # covers the wide curve
    assert ax.get_ylim()[0] == pytest.approx(ppf(1e-2))
    assert narrow.mark(0.15, 0.1, label="t") is not None and narrow.mark(0.0, 0.1) is None
    tiny = DETDisplay(fmr=[0.5], fnmr=[0.5]).plot()  # one point on one tick: the axis does not collapse
    lo, hi = tiny.ax_.get_xlim()
    assert lo < hi and lo == pytest.approx(ppf(DET_TICKS[DET_TICKS.index(0.5) - 1]))
    plt.close("all")
