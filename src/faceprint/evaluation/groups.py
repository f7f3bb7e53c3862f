"""Groups for per-group error rates: from a labels file, or predicted by an attribute estimator.

``faceprint eval run --labels FILE`` or ``--groups predicted-gender,predicted-age-band`` give
each image of a protocol a group; ``--impostors same-group`` then draws the non-mated pairs
within each group (:func:`~.protocols.matched.same_group_impostors`). Predicted groups come from
a detection-only pass with the evaluation's detector and face selection, and the attribute
estimator (``dlib-age-gender``). They are model estimates: :func:`groups_provenance` records
that, with the attribute model's error as measured on labelled data (the manifest's
``measured_error``), and the report states both.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..attributes.base import AGE_BANDS, AttributeEstimate, age_band
from ..errors import ConfigurationError, FaceprintError
from .protocols import ProtocolSource, VerificationProtocol
from .protocols.labels import image_groups, pair_groups
from .protocols.matched import DEFAULT_PER_GROUP, IMPOSTOR_MODES, same_group_impostors

__all__ = [
    "GROUP_KINDS",
    "parse_group_kinds",
    "predict_attributes",
    "predicted_image_groups",
    "groups_provenance",
    "apply_groups",
    "describe_groups",
]

log = logging.getLogger(__name__)

#: ``--groups`` choices
GROUP_KINDS = ("predicted-gender", "predicted-age-band")
DEFAULT_ESTIMATOR = "dlib-age-gender"
_ESTIMATOR_MODELS = {"dlib-age-gender": {"predicted-gender": "dlib-gender-v1", "predicted-age-band": "dlib-age-v1"}}


def parse_group_kinds(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"predicted-gender,predicted-age-band"`` → the kinds, checked against :data:`GROUP_KINDS`."""
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p.strip()]
    bad = [p for p in parts if p not in GROUP_KINDS]
    if bad or not parts:
        raise ConfigurationError(f"unknown --groups {', '.join(bad) or '(none)'}; choose from {', '.join(GROUP_KINDS)}")
    return tuple(dict.fromkeys(parts))


def predict_attributes(
    protocol: VerificationProtocol,
    *,
    detector: str = "dlib-hog",
    detector_options: Mapping[str, Any] | None = None,
    estimator: str = DEFAULT_ESTIMATOR,
    select: str = "largest",
    max_pixels: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[AttributeEstimate | None]:
    """The attributes of each image's selected face (None: no face, or the image failed)."""
    from ..io import load_image
    from ..pipeline import select_faces
    from ..registry import attribute_estimators, detectors

    if protocol.templates is not None or protocol.prealigned is not None:
        raise ConfigurationError("predicted groups need a protocol of photographs with faces to detect")
    det = detectors.create(detector, **dict(detector_options or {}))
    est = attribute_estimators.create(estimator)
    out: list[AttributeEstimate | None] = []
    for im in protocol.images:
        try:
            img = load_image(im.source, max_pixels=max_pixels)
            faces = select_faces([d for d in det.detect(img) if d.landmarks is not None], img.shape, select)  # type: ignore[arg-type]
            out.append(est.estimate(img, faces[0]) if faces else None)
        except FaceprintError as exc:
            log.debug("no attributes for %s: %s", im.key, exc)
            out.append(None)
        if progress is not None:
            progress(1)
    return out


def predicted_image_groups(
    estimates: Sequence[AttributeEstimate | None], kinds: Sequence[str], bands: Sequence[int] = AGE_BANDS
) -> npt.NDArray[np.str_]:
    """One group per image: the predicted gender and/or age band (joined by ``"/"``); ``""`` without a face."""
    out = []
    for e in estimates:
        if e is None:
            out.append("")
            continue
        parts = [e.gender if k == "predicted-gender" else age_band(e.age, bands) for k in kinds]
        out.append("/".join(parts))
    return np.array(out, dtype=np.str_)


def groups_provenance(kinds: Sequence[str], estimator: str = DEFAULT_ESTIMATOR) -> dict[str, Any]:
    """What the report says about predicted groups: that they are predicted, by which model, with its
    measured error (``None`` where it was never measured on labelled data)."""
    from ..models import get_spec

    models = _ESTIMATOR_MODELS.get(estimator, {})
    errors: dict[str, Any] = {}
    for k in kinds:
        name = models.get(k)
        spec = get_spec(name) if name else None
        errors[k] = {
            "model": name,
            "measured_error": None if spec is None else spec.extra.get("measured_error"),
        }
    return {
        "source": "predicted",
        "kinds": list(kinds),
        "estimator": estimator,
        "age_bands": list(AGE_BANDS) if "predicted-age-band" in kinds else None,
        "attribute_models": errors,
        "note": "groups are predicted by an attribute model, not labels; each prediction can be wrong",
    }


def apply_groups(
    src: ProtocolSource,
    groups: npt.NDArray[np.str_] | None,
    *,
    labels: Path | None = None,
    impostors: str = "protocol",
    per_group: int = DEFAULT_PER_GROUP,
    seed: int = 0,
) -> tuple[ProtocolSource, dict[str, Any]]:
    """``src`` with per-image ``groups`` (or those of ``labels``) on its pairs, and with same-group
    non-mated pairs when ``impostors="same-group"``; plus what the provenance records about it.

    The calibration protocol (where the threshold is chosen) is left as it is: every group is
    judged at the system's one threshold.
    """
    if impostors not in IMPOSTOR_MODES:
        raise ConfigurationError(f"--impostors must be one of {', '.join(IMPOSTOR_MODES)}, got {impostors!r}")
    p = src.protocol
    if not isinstance(p, VerificationProtocol):
        raise ConfigurationError("groups apply to verification protocols")
    if groups is None and labels is not None:
        groups = image_groups(p, labels)
    if groups is None:
        if impostors == "same-group":
            raise ConfigurationError("--impostors same-group needs groups: pass --labels FILE or --groups predicted-…")
        return src, {}
    info: dict[str, Any] = {"impostors": impostors}
    if impostors == "same-group":
        p = same_group_impostors(p, groups, per_group=per_group, seed=seed)
        info.update(per_group=per_group, seed=seed)
    else:
        p = dataclasses.replace(p, groups=pair_groups(groups, p.a, p.b))
    names, counts = np.unique(groups[groups != ""], return_counts=True)
    info["images_per_group"] = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    info["images_without_group"] = int((groups == "").sum())
    return dataclasses.replace(src, protocol=p), info


def describe_groups(info: Mapping[str, Any]) -> list[str]:
    """Sentences for a report or card on where its groups came from (the provenance's ``"groups"``)."""

    def pct(x: float) -> str:
        return f"{100 * x:.2f}%"

    out: list[str] = []
    if info.get("source") == "labels":
        out.append(f"Groups from the labels file {Path(str(info.get('labels'))).name}.")
    if info.get("source") == "predicted":
        parts = []
        for kind, m in (info.get("attribute_models") or {}).items():
            e = (m.get("measured_error") or {}).get("error")
            how = (
                f"error {pct(e['rate'])} [{pct(e['ci95'][0])}, {pct(e['ci95'][1])}] on {e['n']:,} labelled images"
                if e
                else "error not measured (no labelled data)"
            )
            parts.append(f"{kind} by {m.get('model')}: {how}")
        out.append(
            f"The groups are PREDICTED by the attribute model {info.get('estimator')}, not labelled: "
            + "; ".join(parts)
            + ". Images whose prediction is wrong sit in the wrong group."
        )
    if info.get("impostors") == "same-group":
        out.append(
            f"Non-mated pairs are demographically matched (ISO/IEC 19795-10): up to {info['per_group']:,} pairs of "
            f"different people within each group, drawn with seed {info['seed']}; the mated pairs are the protocol's."
        )
    return out
