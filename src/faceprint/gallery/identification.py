"""Identification (1:N, open set) and verification against a claimed subject (1:1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, SubjectNotFoundError
from ..types import Decision, Embedding
from .calibration import CalibrationMixin
from .ranking import kept_by_quality, rank_subjects, subject_score
from .values import IdentifyResult, ScoreStrategy

if TYPE_CHECKING:
    from ..io import ImageSource
    from ..pipeline import FacePipeline

__all__ = ["IdentificationMixin"]


class IdentificationMixin(CalibrationMixin):
    """``identify``, ``identify_many`` and ``verify``."""

    def identify(
        self,
        probe: Embedding | ImageSource,
        k: int = 5,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
        min_template_quality: float | None = None,
    ) -> IdentifyResult:
        """Who is this? Up to ``k`` subjects whose score reaches the open-set threshold, best first.

        ``probe`` is an :class:`Embedding` or an image (its main face is embedded with
        ``pipeline`` or the gallery's stored pipeline; a pipeline with ``min_quality`` refuses
        an image below it with :class:`~faceprint.errors.LowQualityError`). ``threshold`` defaults to the gallery's
        calibrated threshold (:meth:`calibrate`); pass ``-math.inf`` for a closed-set ranking.
        ``strategy`` (``"max"``/``"mean"`` of a subject's template scores, or ``"quality-mean"``,
        their mean weighted by each template's stored quality) defaults to the gallery's setting.

        ``min_template_quality`` (0-100) leaves out the templates whose stored quality is below
        it, as if they were not enrolled; templates without a stored quality (enrolled without a
        quality assessor) are kept. A subject left with no template is not a candidate. The
        filter applies to the search's hits after retrieval (every store alike), and the
        calibrated threshold is the one of the whole gallery.
        """
        probes: list[Any] = [probe]
        return self.identify_many(
            probes,
            k,
            threshold=threshold,
            strategy=strategy,
            pipeline=pipeline,
            min_template_quality=min_template_quality,
        )[0]

    def identify_many(
        self,
        probes: Sequence[Embedding] | Sequence[ImageSource] | npt.ArrayLike,
        k: int = 5,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
        min_template_quality: float | None = None,
    ) -> list[IdentifyResult]:
        """:meth:`identify` for several probes (one vectorised search). A float (N, D) array is
        taken as vectors of the gallery's model."""
        if k < 1:
            raise ConfigurationError(f"k must be ≥ 1, got {k}")
        self._refresh()
        strat = self._check_strategy(strategy or self._settings.strategy)
        floor = _check_floor(min_template_quality)
        x = self._probe_matrix(probes, pipeline)
        thr, source = self._resolve_threshold(threshold)
        model = self._settings.model or ""
        if self._settings.model is None or x.shape[0] == 0:
            return [IdentifyResult([], thr, source, strat, model, k) for _ in range(x.shape[0])]
        out = []
        for cands in rank_subjects(self, x, k, strat, floor):
            kept = [c for c in cands if c.score >= thr]
            out.append(IdentifyResult(kept, thr, source, strat, model, k))
        return out

    def verify(
        self,
        probe: Embedding | ImageSource,
        subject: str,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
        min_template_quality: float | None = None,
    ) -> Decision:
        """1:1: is ``probe`` the enrolled ``subject``? The score is the ``max``/``mean``/``quality-mean``
        cosine over the subject's templates (those of stored quality at least
        ``min_template_quality``, as in :meth:`identify`); the threshold defaults to the model's
        calibrated 1:1 operating point at FMR = 1e-3."""
        strat = self._check_strategy(strategy or self._settings.strategy)
        floor = _check_floor(min_template_quality)
        subj = self.store.subject(subject)
        if subj is None:
            raise SubjectNotFoundError(
                f"no subject {subject!r} in gallery {self.location}: see `faceprint gallery list`"
            )
        x = self._probe_matrix(probe, pipeline)[0]
        tids, v = self.store.subject_vectors([subj.id]).get(
            subj.id, (np.zeros(0, np.int64), np.zeros((0, x.shape[0]), np.float32))
        )
        quals: list[float | None] = []
        if floor is not None or strat == "quality-mean":
            stored = self.store.template_qualities([int(t) for t in tids])
            quals = [stored.get(int(t)) for t in tids]
            keep = np.array([kept_by_quality(q, floor) for q in quals], bool)
            v, quals = v[keep], [q for q, kept in zip(quals, keep, strict=True) if kept]
        if v.shape[0] == 0:
            below = f" of quality {floor:g} or more" if floor is not None else ""
            raise SubjectNotFoundError(f"subject {subject!r} has no templates{below}")
        score = float(np.clip(subject_score(v @ x, strat, quals), -1.0, 1.0))
        if threshold is not None:
            if math.isnan(float(threshold)):
                raise ConfigurationError("threshold is NaN: pass a number (a cosine similarity)")
            thr, name, fmr = float(threshold), "custom", float("nan")
        else:
            point = self._model_operating_point("fmr=0.001")
            if point is None:
                raise ConfigurationError(
                    f"model {self._settings.model} has no calibrated 1:1 operating point: pass threshold="
                )
            thr, name, fmr = point.threshold, point.name, point.fmr
        return Decision(
            score=score,
            threshold=thr,
            operating_point=name,
            fmr=fmr,
            match=score >= thr,
            model=self._settings.model or "",
        )


def _check_floor(min_template_quality: float | None) -> float | None:
    """``min_template_quality`` checked: None, or a number in [0, 100]."""
    if min_template_quality is None:
        return None
    from ..quality.select import check_min_quality

    try:
        return check_min_quality(min_template_quality)
    except ConfigurationError as exc:
        raise ConfigurationError(str(exc).replace("min_quality", "min_template_quality")) from None
