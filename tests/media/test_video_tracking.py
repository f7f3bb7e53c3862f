"""The tracker alone (faceprint.media.tracking): association, the appearance veto, the fused template.

Faces here are made of boxes and embeddings, with no image: the tracker sees nothing else.
The real video is in ``test_video.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.media.tracking import Tracker, iou_matrix
from faceprint.types import BBox, Detection, Embedding, Face, QualityComponent, QualityReport

RNG = np.random.default_rng(7)
PERSON_A = RNG.normal(size=128)
PERSON_B = RNG.normal(size=128)


def face(x: float, y: float, who: np.ndarray | None = None, quality: float | None = None, size: float = 60) -> Face:
    emb = None
    if who is not None:
        emb = Embedding((who + RNG.normal(scale=0.05, size=who.shape)).astype(np.float32), "m", "1")
    q = None if quality is None else QualityReport(quality, {"x": QualityComponent(0.0, quality)}, "test")
    return Face(Detection(BBox(x, y, x + size, y + size), 0.9), emb, None, q)


def test_iou_matrix() -> None:
    got = iou_matrix([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert got.shape == (1, 3)
    assert got[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_a_moving_face_keeps_one_id_and_a_new_face_gets_another() -> None:
    tr = Tracker(min_hits=1)
    for f in range(0, 30, 3):  # moves 12 px per detection step: the velocity model keeps the IoU high
        tr.update(f, [face(100 + 4 * f, 50, PERSON_A)] + ([face(400, 50, PERSON_B)] if f >= 15 else []))
    tracks = tr.finish()
    assert [t.id for t in tracks] == [1, 2]
    assert [o.frame for o in tracks[0].observations] == list(range(0, 30, 3))
    assert tracks[1].first_frame == 15
    # the prediction follows the motion: 4 px a frame, 3 frames on
    assert tracks[0].predict(30)[0] == pytest.approx(100 + 4 * 30, abs=1.0)


def test_appearance_veto_splits_a_camera_cut_that_motion_alone_would_join() -> None:
    def run(veto: float | None) -> list[list[int]]:
        tr = Tracker(veto_threshold=veto, min_hits=1)
        for f in range(10):  # person A, then a cut: person B at the same place
            tr.update(f, [face(100, 100, PERSON_A if f < 5 else PERSON_B)])
        return [[o.frame for o in t.observations] for t in tr.finish()]

    assert run(None) == [list(range(10))]  # IoU alone: one track, an identity switch
    assert run(0.9) == [list(range(5)), list(range(5, 10))]


def test_a_lost_face_is_refound_by_appearance_only_above_reid_threshold() -> None:
    def run(reid: float | None) -> int:
        tr = Tracker(reid_threshold=reid, max_age=30, min_hits=1)
        tr.update(0, [face(100, 100, PERSON_A)])
        tr.update(3, [face(500, 300, PERSON_A)])  # far away (e.g. after a pan): no overlap
        return len(tr.finish())

    assert run(None) == 2
    assert run(0.95) == 1


def test_tracks_expire_after_max_age_and_short_ones_are_dropped() -> None:
    tr = Tracker(max_age=5, min_hits=2)
    tr.update(0, [face(0, 0, PERSON_A), face(300, 0, PERSON_B)])
    tr.update(1, [face(0, 0, PERSON_A)])
    assert tr.update(6, []) == []  # 5 frames without A: not yet
    done = tr.update(7, [])
    assert [t.hits for t in done] == [2]  # A finished; B (1 observation) dropped as spurious
    assert tr.active == []


def test_fused_template_is_the_quality_weighted_mean_and_best_shot_the_best_quality() -> None:
    tr = Tracker(min_hits=1)
    faces = [face(100, 100, PERSON_A, q) for q in (20.0, 90.0, 50.0)]
    for i, f in enumerate(faces):
        tr.update(i, [f])
    (t,) = tr.finish()
    vecs = np.stack([f.embedding.vector for f in faces]).astype(np.float64)
    w = np.array([0.2, 0.9, 0.5])[:, None]
    want = (w * vecs).sum(0)
    want /= np.linalg.norm(want)
    assert t.template() is not None
    assert np.allclose(t.template().vector, want, atol=1e-6)
    assert t.best_frame == 1 and t.best_face is faces[1]
    assert [o.quality for o in t.observations] == [20.0, 90.0, 50.0]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Tracker(iou_threshold=0)
    with pytest.raises(ConfigurationError):
        Tracker(max_age=0)
