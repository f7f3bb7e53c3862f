"""How well anonymisation works: re-identification, detection after it, and faces it never saw.

For each mated pair (a, b) of a verification protocol (LFW View 1 DevTest by default), image
``a`` is anonymised by every method and its face compared with the original face of ``b`` (the
same person's *other* image) by the pipeline's own verifier:

- **re-identification rate** at FMR 1e-2 and 1e-3: the share of anonymised faces whose score
  against ``b`` reaches the calibrated threshold of that operating point. The attacker is given
  the face's position (the landmarks found on the original), the strongest case: a blurred face
  is easy to locate even when a detector no longer finds it.
- **detection rate**: the share of anonymised faces the detector still finds (IoU ≥ 0.3 with
  the original box): what k-Same is for, and what blur and masks remove.
- **missed**: the share of pairs where the detector found no face in ``a``; such a face would be
  left un-anonymised, whatever the method.

The ``none`` row is the verifier on the untouched images, the rate anonymisation starts from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigurationError, FaceprintError
from ..media.anonymize import Anonymizer, box_iou
from ..pipeline import select_faces

if TYPE_CHECKING:
    from ..io import ImageSource
    from ..pipeline import FacePipeline

__all__ = ["MethodRates", "AnonymizationReport", "evaluate_anonymization", "ANON_OPERATING_POINTS"]

log = logging.getLogger(__name__)

#: (row label, calibrated operating point): the manifest's EER point sits at FMR ≈ 1.0e-2 on LFW
#: DevTrain (its measured FMR is reported beside it)
ANON_OPERATING_POINTS: tuple[tuple[str, str], ...] = (("fmr=1e-2", "eer"), ("fmr=1e-3", "fmr=0.001"))
_DETECTED_IOU = 0.3


@dataclass(slots=True)
class MethodRates:
    """Counts for one method over the pairs whose face was found in ``a`` and in ``b``."""

    method: str
    settings: dict[str, Any]
    pairs: int = 0
    reidentified: dict[str, int] = field(default_factory=dict)
    detected: int = 0
    scores: list[float] = field(default_factory=list)
    detect: bool = True  #: whether the detection rate was measured

    def rate(self, point: str) -> float:
        return self.reidentified.get(point, 0) / self.pairs if self.pairs else float("nan")

    @property
    def detection_rate(self) -> float | None:
        if not self.detect:
            return None
        return self.detected / self.pairs if self.pairs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "settings": self.settings,
            "pairs": self.pairs,
            "reidentification": {p: round(self.rate(p), 4) for p in self.reidentified},
            "detection_rate": None if self.detection_rate is None else round(self.detection_rate, 4),
            "mean_score": round(float(np.mean(self.scores)), 4) if self.scores else None,
        }


@dataclass(slots=True)
class AnonymizationReport:
    """The table of ``faceprint anonymize eval``: one :class:`MethodRates` per method."""

    protocol: str
    model: str
    thresholds: dict[str, dict[str, float]]
    pairs: int = 0
    missed: int = 0  #: pairs whose face in ``a`` the detector did not find (left un-anonymised)
    unusable: int = 0  #: pairs with no face found in ``b`` (nothing to re-identify against)
    failed: int = 0  #: pairs with an unreadable image
    rows: list[MethodRates] = field(default_factory=list)

    @property
    def missed_rate(self) -> float:
        n = self.pairs - self.unusable - self.failed
        return self.missed / n if n > 0 else float("nan")

    def row(self, method: str) -> MethodRates:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "thresholds": self.thresholds,
            "pairs": self.pairs,
            "missed": self.missed,
            "missed_rate": round(self.missed_rate, 4),
            "unusable": self.unusable,
            "failed": self.failed,
            "methods": [r.to_dict() for r in self.rows],
        }

    def to_markdown(self) -> str:
        pts = list(self.thresholds)
        head = "| method | settings | " + " | ".join(f"re-id @ {p}" for p in pts) + " | detected after |"
        lines = [head, "|" + "---|" * (len(pts) + 3)]
        for r in self.rows:
            s = ", ".join(f"{k}={v}" for k, v in r.settings.items() if k != "method") or "-"
            cells = " | ".join(f"{100 * r.rate(p):.1f} %" for p in pts)
            det = "not measured" if r.detection_rate is None else f"{100 * r.detection_rate:.1f} %"
            lines.append(f"| {r.method} | {s} | {cells} | {det} |")
        thr = "; ".join(
            f"{p}: threshold {v['threshold']:.4f} (calibrated FMR {v['fmr']:.4g})" for p, v in self.thresholds.items()
        )
        lines += [
            "",
            f"{self.protocol}: {self.pairs} mated pairs, {self.pairs - self.missed - self.unusable - self.failed} "
            f"anonymised and compared; faces missed by the detector (left un-anonymised): {self.missed} "
            f"({100 * self.missed_rate:.1f} %); no face in the other image: {self.unusable}; unreadable: "
            f"{self.failed}. Model {self.model}; {thr}.",
        ]
        return "\n".join(lines)


def evaluate_anonymization(
    pairs: Sequence[tuple[ImageSource, ImageSource]],
    pipeline: FacePipeline,
    anonymizers: Mapping[str, Anonymizer],
    *,
    protocol: str = "pairs",
    detect_after: bool | Collection[str] = True,
    progress: Callable[[int, int | None], None] | None = None,
) -> AnonymizationReport:
    """Anonymise image ``a`` of each mated pair by every method and try to re-identify it against ``b``.

    ``anonymizers`` maps a row label to an :class:`Anonymizer` (their detectors should be the
    pipeline's: the faces covered are the ones the pipeline's detector finds in ``a``).
    ``detect_after``: measure the detection rate after anonymisation for every row (``True``), for
    none, or for the rows named (each face the detector misses may cost a slow fallback scan);
    rows left out report ``detection_rate`` None.
    """
    if not pairs:
        raise ConfigurationError("no pairs to evaluate")
    thresholds: dict[str, dict[str, float]] = {}
    for label, name in ANON_OPERATING_POINTS:
        op = pipeline.operating_point(name)
        thresholds[label] = {"threshold": float(op.threshold), "fmr": float(op.fmr), "operating_point": name}  # type: ignore[dict-item]
    rows = [MethodRates("none", {})] + [MethodRates(k, an.settings()) for k, an in anonymizers.items()]
    for r in rows:
        r.reidentified = {p: 0 for p in thresholds}
        r.detect = detect_after if isinstance(detect_after, bool) else r.method in detect_after
    report = AnonymizationReport(protocol, pipeline.model_tag, thresholds, rows=rows)
    for i, (a, b) in enumerate(pairs):
        report.pairs += 1
        try:
            img_a = pipeline.load(a)
            faces_b = pipeline.analyze(b, select="central")
        except FaceprintError as exc:
            log.warning("pair %d skipped: %s", i, exc)
            report.failed += 1
            continue
        if not faces_b or faces_b[0].embedding is None:
            report.unusable += 1
            continue
        ref = faces_b[0].embedding.vector
        dets = [d for d in pipeline.detector.detect(img_a) if d.landmarks is not None]
        target = select_faces(dets, img_a.shape, "central")
        if not target:
            report.missed += 1
            continue
        t = target[0]
        variants = [(rows[0], img_a)] + [
            (row, an.cover(img_a, dets)) for row, an in zip(rows[1:], anonymizers.values(), strict=True)
        ]
        for row, img in variants:
            row.pairs += 1
            emb = pipeline.embed_detections(img, [t])[0].embedding
            assert emb is not None
            score = float(np.dot(emb.vector, ref))
            row.scores.append(score)
            for p, v in thresholds.items():
                row.reidentified[p] += int(score >= v["threshold"])
            if row.detect:
                row.detected += int(
                    any(box_iou(d.bbox, t.bbox) >= _DETECTED_IOU for d in pipeline.detector.detect(img))
                )
        if progress is not None:
            progress(i + 1, len(pairs))
    return report


def protocol_mated_pairs(
    kind: str, data: str, *, pairs: str | None = None, n: int = 100
) -> tuple[str, list[tuple[str, str]], set[str]]:
    """(protocol name, the first ``n`` mated pairs as paths, the subjects of all its pairs) of a
    verification protocol read by :func:`~faceprint.evaluation.protocols.open_protocol`."""
    from .protocols import VerificationProtocol, open_protocol

    proto = open_protocol(kind, data, pairs=pairs).protocol
    if not isinstance(proto, VerificationProtocol):
        raise ConfigurationError(f"protocol {proto.name!r} has no image pairs; anonymisation eval needs mated pairs")
    out: list[tuple[str, str]] = []
    subjects: set[str] = set()
    for a, b, mated in proto.pairs():
        subjects.update(s for s in (a.subject, b.subject) if s)
        if mated and len(out) < n and a.path and b.path:
            out.append((a.path, b.path))
    if not out:
        raise ConfigurationError(f"protocol {proto.name!r} has no mated pairs")
    return proto.name, out, subjects


def lfw_reference_images(data: str, exclude: set[str], n: int = 300) -> list[str]:
    """k-Same reference photos for an LFW evaluation: the first image of each person of
    ``pairsDevTrain.txt`` who is not in ``exclude`` (View 1's DevTrain and DevTest share no one)."""
    from pathlib import Path

    from .protocols.lfw import read_lfw_pairs

    root = Path(data)
    train = root / "pairsDevTrain.txt"
    if not train.is_file():
        raise ConfigurationError(f"no {train} to draw k-Same reference faces from; pass --reference DIR")
    seen: set[str] = set(exclude)
    out: list[str] = []
    for p in read_lfw_pairs(train, root):
        for person, path in ((p.identity_a, p.a), (p.identity_b, p.b)):
            if person not in seen and len(out) < n:
                seen.add(person)
                out.append(str(path))
    return out
