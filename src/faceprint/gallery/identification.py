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
from .ranking import rank_subjects
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
    ) -> IdentifyResult:
        """Who is this? Up to ``k`` subjects whose score reaches the open-set threshold, best first.

        ``probe`` is an :class:`Embedding` or an image (its main face is embedded with
        ``pipeline`` or the gallery's stored pipeline). ``threshold`` defaults to the gallery's
        calibrated threshold (:meth:`calibrate`); pass ``-math.inf`` for a closed-set ranking.
        ``strategy`` (``"max"``/``"mean"`` of a subject's template scores) defaults to the
        gallery's setting.
        """
        probes: list[Any] = [probe]
        return self.identify_many(probes, k, threshold=threshold, strategy=strategy, pipeline=pipeline)[0]

    def identify_many(
        self,
        probes: Sequence[Embedding] | Sequence[ImageSource] | npt.ArrayLike,
        k: int = 5,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
    ) -> list[IdentifyResult]:
        """:meth:`identify` for several probes (one vectorised search). A float (N, D) array is
        taken as vectors of the gallery's model."""
        if k < 1:
            raise ConfigurationError(f"k must be ≥ 1, got {k}")
        self._refresh()
        strat = self._check_strategy(strategy or self._settings.strategy)
        x = self._probe_matrix(probes, pipeline)
        thr, source = self._resolve_threshold(threshold)
        model = self._settings.model or ""
        if self._settings.model is None or x.shape[0] == 0:
            return [IdentifyResult([], thr, source, strat, model, k) for _ in range(x.shape[0])]
        out = []
        for cands in rank_subjects(self, x, k, strat):
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
    ) -> Decision:
        """1:1: is ``probe`` the enrolled ``subject``? The score is the ``max``/``mean`` cosine over
        the subject's templates; the threshold defaults to the model's calibrated 1:1 operating
        point at FMR = 1e-3."""
        strat = self._check_strategy(strategy or self._settings.strategy)
        subj = self.store.subject(subject)
        if subj is None:
            raise SubjectNotFoundError(
                f"no subject {subject!r} in gallery {self.location}: see `faceprint gallery list`"
            )
        x = self._probe_matrix(probe, pipeline)[0]
        _tids, v = self.store.subject_vectors([subj.id]).get(subj.id, (None, np.zeros((0, x.shape[0]), np.float32)))
        if v.shape[0] == 0:
            raise SubjectNotFoundError(f"subject {subject!r} has no templates")
        s = v @ x
        score = float(np.clip(np.max(s) if strat == "max" else np.mean(s), -1.0, 1.0))
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
