"""The open-set threshold: calibrated for a stated FPIR from non-mated searches, and resolved per search.

A candidate is returned by :meth:`Gallery.identify` only when its score reaches the gallery's
open-set threshold. :meth:`CalibrationMixin.calibrate` sets it with :func:`fpir_threshold` from
the best subject scores of searches of people *not* enrolled; without a calibration the model's
1:1 operating point at FMR = 1e-3 is used, with a warning (FPIR ≈ FMR × subjects).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..rates import fpir_fnir_at, threshold_at_fpir
from ..types import Embedding
from .core import GalleryCore
from .ranking import rank_subjects
from .values import OpenSetCalibration, ScoreStrategy, split_model_tag

__all__ = ["CalibrationMixin", "fpir_threshold", "open_set_rates"]

log = logging.getLogger(__name__)


# --- open-set rate estimators: the gallery's names for faceprint.rates' estimators ----------------


def fpir_threshold(nonmated_top_scores: npt.ArrayLike, fpir: float) -> float:
    """Open-set threshold for a target false-positive identification rate.

    ``nonmated_top_scores`` are the best subject scores of searches whose true identity is not
    enrolled (one per search); the result is the lowest threshold with FPIR ≤ ``fpir``
    (:func:`faceprint.rates.threshold_at_fpir`, with its warning below about ``3 / fpir``
    searches). FPIR grows with the gallery size: recalibrate after the gallery grows a lot.
    """
    return threshold_at_fpir(nonmated_top_scores, fpir)


def open_set_rates(
    mated_scores: npt.ArrayLike, nonmated_top_scores: npt.ArrayLike, threshold: float
) -> tuple[float, float]:
    """(FPIR, FNIR) at ``threshold`` at rank 1 (:func:`faceprint.rates.fpir_fnir_at`).

    ``mated_scores``: for each search whose identity is enrolled, the score of the true subject
    when it came first, ``-inf`` (or NaN) when another subject came first. ``nonmated_top_scores``:
    the best score of each search whose identity is not enrolled.
    """
    return fpir_fnir_at(mated_scores, nonmated_top_scores, threshold)


# --- the gallery's threshold ------------------------------------------------------------------


class CalibrationMixin(GalleryCore):
    """``calibrate`` and the threshold every search uses."""

    def calibrate(
        self,
        nonmated: Sequence[Embedding] | npt.ArrayLike,
        fpir: float = 0.01,
        *,
        strategy: ScoreStrategy | None = None,
        store: bool = True,
    ) -> OpenSetCalibration:
        """Set the open-set threshold for a target FPIR from searches of people *not* enrolled.

        Each non-mated probe is searched (closed set); the threshold is :func:`fpir_threshold`
        of their best subject scores. With ``store`` the threshold becomes the gallery's default
        for :meth:`identify`. Calibrate on probes like the real ones (same capture conditions),
        and again when the gallery has grown: FPIR rises with the number of subjects.
        """
        strat = self._check_strategy(strategy or self._settings.strategy)
        x = self._probe_matrix(nonmated)
        if self.store.counts()[1] == 0:
            raise ConfigurationError("calibrate needs an enrolled gallery: enrol subjects first")
        ranked = rank_subjects(self, x, 1, strat)
        top = np.array([c[0].score if c else -1.0 for c in ranked], dtype=np.float64)
        t = fpir_threshold(top, fpir)
        cal = OpenSetCalibration(
            threshold=t,
            fpir=float(fpir),
            measured_fpir=float(np.mean(top >= t)),
            n_nonmated=int(top.size),
            n_subjects=self.store.counts()[0],
            strategy=strat,
            calibrated_at=time.time(),
        )
        if store:
            with self._lock:
                s = self.settings
                s.calibration = asdict(cal)
                if strat != s.strategy:
                    s.strategy = strat  # the threshold is only valid for the strategy it was measured with
                self._write_settings(s)
        return cal

    def _resolve_threshold(self, threshold: float | None) -> tuple[float, str]:
        """(threshold, where it came from) for a search."""
        if threshold is not None:
            t = float(threshold)
            if math.isnan(t):
                raise ConfigurationError("threshold is NaN")
            return t, "explicit" if math.isfinite(t) else "none (closed-set ranking)"
        cal = self._settings.calibration
        if cal:
            n_now = self.store.counts(exact=False)[0]
            if cal.get("n_subjects") and n_now > 2 * int(cal["n_subjects"]):
                log.warning(
                    "the open-set threshold was calibrated with %s subjects; the gallery now has %d, so its "
                    "FPIR is higher than %g: recalibrate with gallery.calibrate(...)",
                    cal["n_subjects"],
                    n_now,
                    cal["fpir"],
                )
            return float(cal["threshold"]), (
                f"calibrated: FPIR={cal['fpir']:g} on {cal['n_nonmated']} non-mated searches "
                f"against {cal['n_subjects']} subjects ({cal['strategy']})"
            )
        point = self._model_operating_point("fmr=0.001")
        if point is not None:
            if not self._warned_fallback:
                log.warning(
                    "gallery %s has no calibrated open-set threshold; using the 1:1 threshold of %s at FMR=1e-3. "
                    "FPIR is roughly FMR × number of subjects: calibrate with "
                    "gallery.calibrate(nonmated_probes, fpir=…)",
                    self.location,
                    self._settings.model,
                )
                self._warned_fallback = True
            return (
                point.threshold,
                f"not calibrated: 1:1 operating point fmr=0.001 of {split_model_tag(self._settings.model or '')[0]}",
            )
        if self._settings.model is None:
            return math.inf, "empty gallery"
        raise ConfigurationError(
            f"gallery {self.location} has no open-set threshold and model {self._settings.model} has no stored "
            "operating point: calibrate it with gallery.calibrate(nonmated_probes, fpir=0.01) "
            "(`faceprint gallery calibrate`) or pass threshold="
        )

    def _model_operating_point(self, name: str) -> Any:
        if self._settings.model is None:
            return None
        from ..errors import ModelError
        from ..models import get_spec

        try:
            return get_spec(split_model_tag(self._settings.model)[0]).operating_points.get(name)
        except (ModelError, LookupError):
            return None
