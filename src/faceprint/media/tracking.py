"""Tracking faces between frames: SORT-style association by IoU and motion, checked by appearance.

Each :class:`Track` predicts its box with a constant-velocity model (the box's corners move by
their last measured speed, in pixels per frame); at every frame where faces were detected the
:class:`Tracker` matches the predictions to the detections by the Hungarian algorithm on
``IoU + appearance_weight × cosine`` (Bewley et al., SORT, 2016; the appearance term as in
DeepSORT, Wojke et al., 2017). Appearance (the faces' embeddings) does two things:

* it **vetoes** a motion match whose cosine is below ``veto_threshold``: a camera cut that puts
  another person where the last one stood starts a new track instead of switching identities;
* it **re-finds** a track lost for up to ``max_age`` frames (occlusion, a missed detection, the
  face turned away) anywhere in the frame when the cosine reaches ``reid_threshold``.

A track also accumulates what the video module reports: its observations, its best shot (the
face of highest quality) and its fused template, the quality-weighted mean of its L2-normalised
embeddings (an IJB-style template), renormalised. Nothing here loads a model or reads a frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigurationError
from ..types import Embedding, Face

__all__ = ["Observation", "Track", "Tracker", "iou_matrix", "main_face_switches", "tracks_across_cuts"]

log = logging.getLogger(__name__)

Box: TypeAlias = npt.NDArray[np.float64]  # (4,) x1, y1, x2, y2


def iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Intersection over union of every box of ``a`` (N, 4) with every box of ``b`` (M, 4): (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass(frozen=True, slots=True)
class Observation:
    """One face of a track in one frame: its box, detector score and quality (0-100 or None)."""

    frame: int
    box: tuple[float, float, float, float]
    score: float
    quality: float | None


@dataclass(eq=False)
class Track:
    """One face followed through the video (see the module doc). ``id`` counts from 1."""

    id: int
    observations: list[Observation] = field(default_factory=list)
    #: the face of highest quality so far (its embedding, detection and quality report), and its frame
    best_face: Face | None = None
    best_frame: int = -1
    #: the subject the gallery gave the fused template last (None: unknown or no gallery), and its score
    identity: str | None = None
    identity_score: float | None = None
    _box: Box = field(default_factory=lambda: np.zeros(4))
    _velocity: Box = field(default_factory=lambda: np.zeros(4))
    _last_frame: int = -1
    _appearance: npt.NDArray[np.float64] | None = None
    _fused_sum: npt.NDArray[np.float64] | None = None
    _weight_sum: float = 0.0
    _model: tuple[str, str] | None = None

    @property
    def first_frame(self) -> int:
        return self.observations[0].frame if self.observations else -1

    @property
    def last_frame(self) -> int:
        return self._last_frame

    @property
    def hits(self) -> int:
        return len(self.observations)

    def predict(self, frame: int) -> Box:
        """The box expected at ``frame`` (constant velocity from the last observation)."""
        return self._box + self._velocity * float(frame - self._last_frame)

    def similarity(self, embedding: Embedding | None) -> float | None:
        """Cosine between ``embedding`` and the track's recent appearance (None when either is missing)."""
        if embedding is None or self._appearance is None:
            return None
        return float(np.dot(self._appearance, embedding.vector))

    def add(self, frame: int, face: Face, *, appearance_momentum: float = 0.7) -> None:
        """Extend the track with ``face`` seen at ``frame``."""
        d = face.detection
        box = np.array(d.bbox.as_list(), dtype=np.float64)
        if self.observations and frame > self._last_frame:
            measured = (box - self._box) / float(frame - self._last_frame)
            # smoothed, so one jittery box does not throw the prediction off
            self._velocity = measured if self.hits == 1 else 0.5 * self._velocity + 0.5 * measured
        self._box, self._last_frame = box, frame
        q = face.quality.quality if face.quality is not None else None
        self.observations.append(Observation(frame, (box[0], box[1], box[2], box[3]), float(d.score), q))
        e = face.embedding
        if e is None:
            return
        v = e.vector.astype(np.float64)
        if self._appearance is None:
            self._appearance = v.copy()
        else:
            a = appearance_momentum * self._appearance + (1 - appearance_momentum) * v
            self._appearance = a / max(float(np.linalg.norm(a)), 1e-12)
        # the IJB-style template: quality-weighted mean of normalised embeddings (uniform without quality)
        w = max(q, 1.0) / 100.0 if q is not None else 1.0
        self._fused_sum = w * v if self._fused_sum is None else self._fused_sum + w * v
        self._weight_sum += w
        self._model = (e.model_id, e.model_version)
        if self.best_face is None or _quality(face) > _quality(self.best_face):
            self.best_face, self.best_frame = face, frame

    def template(self) -> Embedding | None:
        """The fused template: quality-weighted mean of the track's embeddings, L2-normalised."""
        if self._fused_sum is None or self._model is None:
            return None
        return Embedding(self._fused_sum.astype(np.float32), *self._model)


def _quality(face: Face) -> float:
    return face.quality.quality if face.quality is not None else float(face.detection.score)


class Tracker:
    """Associate the faces of successive detected frames into tracks (see the module doc).

    Args:
        iou_threshold: least IoU between a track's predicted box and a detection to match by motion.
        veto_threshold: a motion match whose appearance cosine is below this is refused (None: no veto).
        reid_threshold: a lost track is re-found by appearance alone at this cosine or more (None: never).
        appearance_weight: weight of the cosine next to the IoU in the assignment score.
        max_age: frames a track survives without a detection before it is finished.
        min_hits: tracks with fewer observations are dropped when they finish (spurious detections).
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,
        veto_threshold: float | None = None,
        reid_threshold: float | None = None,
        appearance_weight: float = 0.5,
        max_age: int = 30,
        min_hits: int = 2,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigurationError(f"iou_threshold must lie in (0, 1], got {iou_threshold}")
        if max_age < 1 or min_hits < 1:
            raise ConfigurationError(f"max_age and min_hits must be ≥ 1, got {max_age} and {min_hits}")
        self.iou_threshold = iou_threshold
        self.veto_threshold = veto_threshold
        self.reid_threshold = reid_threshold
        self.appearance_weight = appearance_weight
        self.max_age = max_age
        self.min_hits = min_hits
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def active(self) -> list[Track]:
        """Tracks not finished yet, oldest first."""
        return list(self._tracks)

    def update(self, frame: int, faces: Sequence[Face]) -> list[Track]:
        """Match the faces detected at ``frame`` to the tracks; returns the tracks that finished
        (not seen for more than ``max_age`` frames and with at least ``min_hits`` observations)."""
        tracks = self._tracks
        matched_t: set[int] = set()
        matched_f: set[int] = set()
        if tracks and faces:
            score = self._scores(frame, tracks, faces)
            rows, cols = linear_sum_assignment(-np.where(np.isfinite(score), score, -1e6))
            for r, c in zip(rows, cols, strict=True):
                if np.isfinite(score[r, c]):
                    tracks[r].add(frame, faces[c])
                    matched_t.add(r)
                    matched_f.add(c)
        for j, f in enumerate(faces):
            if j not in matched_f:
                t = Track(self._next_id)
                self._next_id += 1
                t.add(frame, f)
                tracks.append(t)
        return self._expire(frame)

    def _scores(self, frame: int, tracks: list[Track], faces: Sequence[Face]) -> npt.NDArray[np.float64]:
        """Assignment score of each (track, face); -inf where they may not match."""
        pred = np.stack([t.predict(frame) for t in tracks])
        boxes = np.array([f.detection.bbox.as_list() for f in faces], dtype=np.float64)
        iou = iou_matrix(pred, boxes)
        score = np.full(iou.shape, -np.inf)
        for i, t in enumerate(tracks):
            for j, f in enumerate(faces):
                sim = t.similarity(f.embedding)
                by_motion = iou[i, j] >= self.iou_threshold and (
                    sim is None or self.veto_threshold is None or sim >= self.veto_threshold
                )
                by_look = sim is not None and self.reid_threshold is not None and sim >= self.reid_threshold
                if by_motion or by_look:
                    score[i, j] = iou[i, j] + self.appearance_weight * (sim if sim is not None else 0.0)
        return score

    def _expire(self, frame: int) -> list[Track]:
        done = [t for t in self._tracks if frame - t.last_frame > self.max_age]
        if done:
            self._tracks = [t for t in self._tracks if frame - t.last_frame <= self.max_age]
        return [t for t in done if t.hits >= self.min_hits]

    def finish(self) -> list[Track]:
        """End of the video: every remaining track with at least ``min_hits`` observations."""
        done, self._tracks = self._tracks, []
        return [t for t in done if t.hits >= self.min_hits]


# --- measuring a tracker ---------------------------------------------------------------------------


class _Tracked(Protocol):
    id: int

    @property
    def observations(self) -> list[Observation]: ...


def main_face_switches(tracks: Sequence[_Tracked], frames: range) -> int:
    """ID switches on the main face over ``frames`` (a shot where one face is the largest).

    The main face of a frame is its largest observed box; a switch is a change of the track id
    that holds it between successive frames with observations (the MOT "IDSW" count for that face)."""
    largest: dict[int, tuple[float, int]] = {}
    for t in tracks:
        for o in t.observations:
            area = (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])
            if o.frame in frames and area > largest.get(o.frame, (0.0, 0))[0]:
                largest[o.frame] = (area, t.id)
    ids = [largest[f][1] for f in sorted(largest)]
    return sum(a != b for a, b in zip(ids, ids[1:], strict=False))


def tracks_across_cuts(tracks: Sequence[_Tracked], cuts: Sequence[int]) -> int:
    """Tracks with observations on both sides of a camera cut (``cuts``: first frames of new
    shots). No face survives a cut in a video edited like the Hamilton clip: each is an ID switch."""

    def shot(frame: int) -> int:
        return sum(frame >= c for c in cuts)

    return sum(len({shot(o.frame) for o in t.observations}) > 1 for t in tracks)
