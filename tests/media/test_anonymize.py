"""Anonymisation on real photos: what is covered, what is left alone, and that the input is never overwritten."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.cli import main
from faceprint.errors import ConfigurationError
from faceprint.io import load_image
from faceprint.media.anonymize import (
    Anonymizer,
    KSameReference,
    anonymize_frames,
    blur_region,
    expand_box,
)
from faceprint.types import BBox, Detection

from ..conftest import data_path


def _detail(img: np.ndarray) -> float:
    """High-frequency energy of an image (variance of the Laplacian of its grey copy)."""
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64), cv2.CV_64F).var())


def test_expand_box_adds_the_margin_and_stays_inside_the_image() -> None:
    assert expand_box(BBox(100, 100, 200, 200), 0.25, (400, 400, 3)) == (75, 75, 225, 225)
    assert expand_box(BBox(-10, 5, 50, 60), 0.5, (100, 40, 3)) == (0, 0, 40, 88)


def test_blur_strength_follows_face_size() -> None:
    """The same face at twice the size is blurred twice as much, so the same detail is left."""
    img = load_image(data_path("faces_small", "obama", "obama.jpg"))
    face = np.ascontiguousarray(cv2.resize(img[100:500, 300:700], (120, 120), interpolation=cv2.INTER_AREA))
    big = np.ascontiguousarray(cv2.resize(face, (240, 240), interpolation=cv2.INTER_CUBIC))
    small_b, big_b = face.copy(), big.copy()
    blur_region(small_b, (0, 0, 120, 120), 0.1)
    blur_region(big_b, (0, 0, 240, 240), 0.1)
    back = cv2.resize(big_b, (120, 120), interpolation=cv2.INTER_AREA)
    matched = np.abs(back.astype(int) - small_b.astype(int)).mean()
    # scale-matched: the two results agree to a few grey levels, while a fixed σ (the small
    # face's σ = 12 px) leaves the big face much sharper than the small one
    fixed = cv2.resize(cv2.GaussianBlur(big, (0, 0), 12.0), (120, 120), interpolation=cv2.INTER_AREA)
    assert matched < 3.0
    assert np.abs(fixed.astype(int) - small_b.astype(int)).mean() > 2 * matched
    assert _detail(small_b) < _detail(face) / 20


@pytest.mark.parametrize(
    "method", ["blur", pytest.param("pixelate", marks=pytest.mark.slow), pytest.param("mask", marks=pytest.mark.slow)]
)
def test_every_face_is_covered_and_nothing_else_changes(pipeline, method: str) -> None:
    img = load_image(data_path("group_photos", "face_recognition_two_people.jpg"))
    an = Anonymizer(pipeline.detector, method)
    res = an.anonymize(img)
    assert len(res.faces) == 2
    original = img.copy()
    changed = np.any(res.image != img, axis=2)
    inside = np.zeros(img.shape[:2], dtype=bool)
    for d in res.faces:
        x1, y1, x2, y2 = expand_box(d.bbox, an.margin, img.shape)
        inside[y1:y2, x1:x2] = True
        assert changed[y1:y2, x1:x2].mean() > 0.5  # the face region is rewritten
    assert not changed[~inside].any()  # and nothing outside the widened boxes
    assert np.array_equal(img, original)  # the input array is untouched
    # the covered faces are no longer found
    assert len(pipeline.detector.detect(res.image)) == 0


@pytest.mark.slow
def test_ksame_keeps_a_face_that_is_someone_else(pipeline) -> None:
    refs = [data_path("faces_small", n) for n in ("kit_harington", "rose_leslie", "alex_lacamoire")]
    ref = KSameReference.from_images([p for d in refs for p in sorted(d.iterdir())], pipeline.detector)
    assert len(ref) == 8
    img = load_image(data_path("faces_small", "obama", "obama.jpg"))
    res = Anonymizer(pipeline.detector, "ksame", reference=ref, k=3).anonymize(img)
    after = pipeline.analyze(res.image, select="largest")
    assert after, "k-Same must leave a detectable face"
    before = pipeline.analyze(img, select="largest")[0].embedding
    other = pipeline.analyze(data_path("faces_small", "obama", "obama2.jpg"), select="largest")[0].embedding
    thr = pipeline.operating_point("fmr=0.001").threshold
    assert float(before.vector @ other.vector) >= thr  # the original is re-identified ...
    assert float(after[0].embedding.vector @ other.vector) < thr  # ... its k-Same face is not


def test_ksame_needs_a_reference_set(pipeline) -> None:
    with pytest.raises(ConfigurationError, match="reference"):
        Anonymizer(pipeline.detector, "ksame")
    with pytest.raises(ConfigurationError, match="unknown anonymisation method"):
        Anonymizer(pipeline.detector, "swirl")


class _Scripted:
    """A detector that finds the given boxes in given frames (the detector is not what is tested here)."""

    name = "scripted"

    def __init__(self, per_frame: list[list[Detection]]) -> None:
        self.per_frame = per_frame
        self.i = 0

    def detect(self, image: np.ndarray) -> list[Detection]:
        out = self.per_frame[self.i]
        self.i += 1
        return out


def test_a_face_missed_in_a_few_frames_stays_covered() -> None:
    frame = load_image(data_path("faces_small", "obama", "obama.jpg"))
    d = Detection(BBox(300, 100, 700, 500), 1.0)
    seen = [[d], [], [], [d], [], [], [], []]  # detected in frames 0 and 3 only
    an = Anonymizer(_Scripted(seen), "mask")  # type: ignore[arg-type]
    out = list(anonymize_frames([frame] * len(seen), an, carry=3))
    covered = [bool((o.image[300, 500] == 0).all()) for o in out]
    assert covered == [True, True, True, True, True, True, True, False]
    assert [o.carried for o in out] == [0, 1, 1, 0, 1, 1, 1, 0]


@pytest.mark.slow
def test_cli_never_overwrites_its_input(tmp_path: Path) -> None:
    src = tmp_path / "two.jpg"
    src.write_bytes(data_path("group_photos", "face_recognition_two_people.jpg").read_bytes())
    before = src.read_bytes()
    assert main(["anonymize", str(src), str(src)]) == 2  # OUT is the input: refused
    assert main(["anonymize", str(src)]) == 0
    assert src.read_bytes() == before
    out = tmp_path / "two.anon.jpg"
    assert out.exists() and out.read_bytes() != before
    assert main(["anonymize", str(src)]) == 2  # the default output exists: not replaced without --force
    assert main(["anonymize", str(src), "--method", "pixelate", "--force"]) == 0
    assert main(["anonymize", str(src), "--in-place", "--method", "mask"]) == 0
    assert src.read_bytes() != before


@pytest.mark.slow
def test_cli_folder_reports_unreadable_files_and_writes_the_rest(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jpg").write_bytes(data_path("faces_small", "biden", "biden.jpg").read_bytes())
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert main(["anonymize", str(d), str(tmp_path / "out"), "--json"]) == 0
    assert (tmp_path / "out" / "a.jpg").exists() and not (tmp_path / "out" / "broken.png").exists()


@pytest.mark.slow
def test_cli_video_keeps_every_frame(tmp_path: Path) -> None:
    clip = data_path("video", "short_hamilton_clip.mp4")
    cap = cv2.VideoCapture(str(clip))
    short = tmp_path / "short.mp4"
    w = cv2.VideoWriter(str(short), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, (640, 360))
    for _ in range(12):
        ok, f = cap.read()
        assert ok
        w.write(f)
    w.release()
    cap.release()
    out = tmp_path / "anon.mp4"
    assert main(["anonymize", str(short), str(out), "--video"]) == 0
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    cap.release()
    notvideo = tmp_path / "x.mp4"
    notvideo.write_text("not a video")
    assert main(["anonymize", str(notvideo), str(tmp_path / "y.mp4"), "--video"]) != 0


@pytest.mark.slow
def test_cli_eval_prints_the_table_for_each_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    out = tmp_path / "anon.json"
    args = ["anonymize", "eval", "--protocol", "lfw", "--data", str(data_path("lfw_view1")), "--n-pairs", "3"]
    assert main([*args, "--methods", "blur,mask", "--quick", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [m["method"] for m in doc["methods"]] == ["none", "blur", "mask"] and doc["pairs"] == 3
    assert doc["methods"][0]["reidentification"]["fmr=1e-2"] > doc["methods"][2]["reidentification"]["fmr=1e-2"]
    assert "re-id @ fmr=1e-2" in capsys.readouterr().out
    assert main([*args, "--methods", "swirl"]) == 2
