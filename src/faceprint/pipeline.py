"""FacePipeline: decode → detect → align → embed → compare, for one image or a stream of them.

The pipeline owns one detector and one embedder, built from the registries by name (or passed
in). Batch work (:meth:`FacePipeline.embed_many`) runs on :mod:`faceprint.batch`, the one batch
engine: here, in worker processes or on a Dask cluster, each worker building its own pipeline
from :meth:`FacePipeline.settings`, with results streamed back in input order, so a directory
of 100k images never sits in memory at once. Errors on one image are reported in its result
and never stop the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .alignment import align
from .attacks.base import AttackDetector
from .attacks.policy import attack_flag, refuse_attack
from .batch import ProgressHook, cpu_count
from .detection.base import Detector
from .embedding.base import Embedder, model_tag, to_embeddings
from .embedding.tta import TTA_NONE, parse_tta, with_tta
from .errors import ConfigurationError, FaceprintError, NoFaceError
from .io import DEFAULT_MAX_PIXELS, ImageSource, describe_source, load_image
from .models import OperatingPoint
from .quality.base import QualityAssessor
from .quality.select import BestShot, best_of, check_min_quality, flag, refuse_low_quality
from .registry import attack_detectors, detectors, embedders, quality_assessors
from .scoring import decide
from .types import AlignedFace, Decision, Detection, Face

__all__ = ["FacePipeline", "ImageResult", "VerifyResult", "Selection", "select_faces"]

log = logging.getLogger(__name__)

Selection = Literal["all", "largest", "central"]

DEFAULT_DETECTOR = "dlib-hog-mmod"
DEFAULT_EMBEDDER = "dlib-resnet-onnx"


def select_faces(detections: Sequence[Detection], image_shape: tuple[int, ...], how: Selection) -> list[Detection]:
    """Keep every face (``"all"``), the largest box, or the box whose centre is nearest the image centre."""
    if how == "all" or len(detections) <= 1:
        return list(detections)
    if how == "largest":
        return [max(detections, key=lambda d: d.bbox.area)]
    if how == "central":
        cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0

        def dist(d: Detection) -> float:
            x, y = d.bbox.center
            return (x - cx) ** 2 + (y - cy) ** 2

        return [min(detections, key=dist)]
    raise ConfigurationError(f"unknown face selection {how!r}; use 'all', 'largest' or 'central'")


@dataclass(frozen=True, slots=True)
class ImageResult:
    """What the pipeline made of one input of a batch: faces, or the error that stopped it."""

    source: str
    faces: list[Face] = field(default_factory=list)
    error: FaceprintError | None = None
    width: int = 0
    height: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """A 1:1 decision; ``flags`` name a face below the pipeline's ``min_quality`` (not refused)."""

    decision: Decision
    face_a: Face
    face_b: Face
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {**self.decision.to_dict(), "face_a": self.face_a.to_dict(), "face_b": self.face_b.to_dict()}
        if self.flags:
            d["flags"] = list(self.flags)
        return d


class FacePipeline:
    """Detect, align and embed faces.

    Args:
        detector: a registered detector name (``faceprint models list``) or a Detector object.
        embedder: a registered embedder name or an Embedder object.
        detector_options, embedder_options: keyword settings for the named backends.
        max_pixels: refuse images with more pixels than this before decoding them (None: no limit).
        tta: test-time augmentation of each face chip: ``"none"`` (default), ``"flip"`` (chip +
            mirror image) or ``"jitterN"`` (see :mod:`faceprint.embedding.tta`). Anything but
            ``"none"`` tags embeddings ``<model>+<tta>``, with their own operating points.
        quality: a registered quality assessor (``"fiqa"``, ``"fiqa-fast"``) or a QualityAssessor
            object: every :class:`Face` then carries ``face.quality`` (unified 0-100 + components).
        quality_options: keyword settings for a named assessor.
        min_quality: the quality gate (needs ``quality``). :meth:`embed_one` (the enrolment path)
            and :meth:`embed_many` refuse a face below it as a failure to enrol
            (:class:`~faceprint.errors.LowQualityError`, a kind of NoFaceError); :meth:`verify`
            does not refuse but flags it (``VerifyResult.flags``); :meth:`analyze` keeps every face.
        pad: attack screening (liveness / deepfake, :mod:`faceprint.attacks`): a registered attack
            detector (``"minifasnet"``, ``"mesonet"``) or an AttackDetector object, and every
            :class:`Face` carries ``face.attack`` (an :class:`~faceprint.types.AttackScore`,
            higher = attack); or a tuple of names, and ``face.attack`` is a dict name → AttackScore.
            Screening reports, it does not refuse: gates (gallery enrolment, the service) decide.
        pad_options: keyword settings for a named detector (``{"model_dir": ...}``); with a tuple
            of names, a dict name → settings.
        refuse_attacks: the attack gate (needs ``pad``; :mod:`faceprint.attacks.policy`):
            :meth:`embed_one` (enrolment) refuses a face any detector scores as an attack
            (:class:`~faceprint.errors.AttackDetectedError`, a kind of NoFaceError) and
            :meth:`embed_many` drops such faces; :meth:`verify` flags them.

    Building a pipeline loads its models (about a second for the defaults); importing
    faceprint loads none.
    """

    def __init__(
        self,
        detector: str | Detector = DEFAULT_DETECTOR,
        embedder: str | Embedder = DEFAULT_EMBEDDER,
        *,
        detector_options: Mapping[str, Any] | None = None,
        embedder_options: Mapping[str, Any] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        tta: str = TTA_NONE,
        quality: str | QualityAssessor | None = None,
        quality_options: Mapping[str, Any] | None = None,
        min_quality: float | None = None,
        pad: str | Sequence[str] | AttackDetector | None = None,
        pad_options: Mapping[str, Any] | None = None,
        refuse_attacks: bool = False,
    ) -> None:
        self.tta = parse_tta(tta).name
        self._detector_spec: str | Detector = detector
        self._embedder_spec: str | Embedder = embedder
        self.detector_options = dict(detector_options or {})
        self.embedder_options = dict(embedder_options or {})
        self.max_pixels = max_pixels
        self.detector: Detector = (
            detectors.create(detector, **self.detector_options) if isinstance(detector, str) else detector
        )
        base: Embedder = embedders.create(embedder, **self.embedder_options) if isinstance(embedder, str) else embedder
        #: the embedder, wrapped in a :class:`~faceprint.embedding.tta.TtaEmbedder` unless ``tta="none"``
        self.embedder: Embedder = with_tta(base, self.tta)
        self._quality_spec = quality
        self.quality_options = dict(quality_options or {})
        self.min_quality = check_min_quality(min_quality)
        if self.min_quality is not None and quality is None:
            raise ConfigurationError("min_quality needs a quality assessor: pass quality='fiqa' (or another)")
        self._pad_spec = pad
        self.pad_options = dict(pad_options or {})
        self.pad: dict[str, AttackDetector] = _attack_stage(pad, self.pad_options)
        self.refuse_attacks = bool(refuse_attacks)
        if self.refuse_attacks and not self.pad:
            raise ConfigurationError("refuse_attacks needs an attack detector: pass pad='minifasnet' (or another)")
        self.quality: QualityAssessor | None = (
            quality_assessors.create(quality, **self.quality_options) if isinstance(quality, str) else quality
        )

    @property
    def model_tag(self) -> str:
        """``model_id@model_version`` of this pipeline's embedder (TTA included): the tag of its
        embeddings, templates and score files."""
        return model_tag(self.embedder)

    def operating_point(self, name: str = "fmr=0.001") -> OperatingPoint:
        """The calibrated operating point ``name`` (``"fmr=0.001"``, ``"eer"`` …) for this pipeline's
        model, TTA setting and, where the manifest calibrates it separately, detector."""
        from .models import operating_points_for

        det = self._detector_spec if isinstance(self._detector_spec, str) else getattr(self.detector, "name", None)
        points = operating_points_for(self.embedder.model_id, det)
        try:
            return points[name]
        except KeyError:
            known = ", ".join(points) or "none calibrated"
            raise ConfigurationError(
                f"model {self.embedder.model_id!r} has no operating point {name!r} (known: {known}); "
                "pass an explicit threshold instead"
            ) from None

    # --- settings that let worker processes rebuild the same pipeline ---------------------

    @property
    def detector_spec(self) -> str | Detector:
        """The detector as given: a registered name, or the object passed in."""
        return self._detector_spec

    @property
    def embedder_spec(self) -> str | Embedder:
        """The embedder as given: a registered name, or the object passed in."""
        return self._embedder_spec

    def settings(self, worker_threads: int = 1) -> dict[str, Any]:
        """Keyword settings that rebuild this pipeline in another process (``FacePipeline(**s)``).

        ONNX embedders get ``threads=worker_threads`` unless their options name a thread count.
        Raises :class:`ConfigurationError` for pipelines built from objects rather than names.
        """
        if not isinstance(self._detector_spec, str) or not isinstance(self._embedder_spec, str):
            raise ConfigurationError(
                "worker processes need a pipeline built from backend names; pass workers=1 "
                "to run custom detector/embedder objects in this process"
            )
        emb_opts = dict(self.embedder_options)
        if "threads" not in emb_opts and self._embedder_spec.endswith("onnx"):
            emb_opts["threads"] = worker_threads
        out: dict[str, Any] = {
            "detector": self._detector_spec,
            "embedder": self._embedder_spec,
            "detector_options": self.detector_options,
            "embedder_options": emb_opts,
            "max_pixels": self.max_pixels,
            "tta": self.tta,
        }
        if self._quality_spec is not None:  # only when set: other pipelines keep their settings (and cache keys)
            if not isinstance(self._quality_spec, str):
                raise ConfigurationError("worker processes need a quality assessor given by name; pass workers=1")
            out.update(quality=self._quality_spec, quality_options=self.quality_options, min_quality=self.min_quality)
        if self._pad_spec is not None:  # the same: only when set
            if not isinstance(self._pad_spec, (str, tuple, list)):
                raise ConfigurationError("worker processes need attack detectors given by name; pass workers=1")
            out.update(pad=self._pad_spec, pad_options=self.pad_options, refuse_attacks=self.refuse_attacks)
        return out

    # --- one image -------------------------------------------------------------------------

    def load(self, source: ImageSource) -> npt.NDArray[np.uint8]:
        return load_image(source, max_pixels=self.max_pixels)

    def detect(self, image: ImageSource) -> list[Detection]:
        """Faces in an image (path, bytes, array…), best first; ``[]`` when there are none."""
        return self.detector.detect(self.load(image))

    def embed_detections(
        self, image: npt.NDArray[np.uint8], detections: Sequence[Detection], *, keep_aligned: bool = False
    ) -> list[Face]:
        """Align and embed given detections of a decoded image (one batched network call)."""
        usable = [d for d in detections if d.landmarks is not None]
        if len(usable) < len(detections):
            log.warning("%d detections have no landmarks and cannot be aligned", len(detections) - len(usable))
        aligned = [align(image, d, self.embedder.template) for d in usable]
        vecs = self.embedder.embed([a.image for a in aligned])
        embs = to_embeddings(self.embedder, vecs)
        quals = self._assess([image] * len(usable), usable, aligned)
        attacks = self._screen([image] * len(usable), usable)
        return [
            Face(d, e, a if keep_aligned else None, q, s)
            for d, e, a, q, s in zip(usable, embs, aligned, quals, attacks, strict=True)
        ]

    # --- quality ---------------------------------------------------------------------------

    def _assess(
        self, images: Sequence[npt.NDArray[np.uint8]], dets: Sequence[Detection], aligned: Sequence[AlignedFace]
    ) -> list[Any]:
        """Quality reports of the faces (None each when the pipeline has no assessor)."""
        if self.quality is None or not dets:
            return [None] * len(dets)
        return list(self.quality.assess_batch(images, dets, aligned))

    # --- attack screening -------------------------------------------------------------------

    def _screen(self, images: Sequence[npt.NDArray[np.uint8]], dets: Sequence[Detection]) -> list[Any]:
        """Each face's attack screening (None each when the pipeline has no ``pad``): one
        AttackScore for one detector, a dict name → AttackScore for several."""
        if not self.pad or not dets:
            return [None] * len(dets)
        per = {name: det.score_batch(images, dets) for name, det in self.pad.items()}
        if len(per) == 1:
            return list(next(iter(per.values())))
        return [{name: scores[i] for name, scores in per.items()} for i in range(len(dets))]

    def assess_quality(self, image: ImageSource, *, select: Selection = "all") -> list[Face]:
        """Detect the faces of one image and assess their quality, without embedding them.

        Each :class:`Face` has ``quality`` set and no embedding; ``[]`` when there is no face.
        Needs ``FacePipeline(quality=...)``.
        """
        if self.quality is None:
            raise ConfigurationError("assess_quality needs a quality assessor: FacePipeline(quality='fiqa')")
        img = self.load(image)
        dets = [d for d in select_faces(self.detector.detect(img), img.shape, select) if d.landmarks is not None]
        reports = self.quality.assess_batch([img] * len(dets), dets) if dets else []
        return [Face(d, None, None, q) for d, q in zip(dets, reports, strict=True)]

    def best_shot(self, images: Iterable[ImageSource], *, select: Selection = "largest") -> BestShot:
        """The best image of one person among several: the main face of highest unified quality.

        Each image's main face (``select``: largest or central) is detected, assessed and
        embedded; the chosen face comes back with its index, and the ranking of all of them
        (:class:`~faceprint.quality.select.BestShot`). Images without a face or that fail to
        load are listed in ``failed``. Needs ``FacePipeline(quality=...)``; raises
        :class:`NoFaceError` when no image has a face. Enrol ``best.face.embedding`` (or the
        image ``best.index``) to build a gallery from the best shot of each person.
        """
        if self.quality is None:
            raise ConfigurationError("best_shot needs a quality assessor: FacePipeline(quality='fiqa')")
        if select == "all":
            raise ConfigurationError("best_shot needs select='largest' or 'central'")
        candidates: list[tuple[int, str, Face]] = []
        failed: list[tuple[int, str]] = []
        for i, src in enumerate(images):
            try:
                faces = self.analyze(src, select=select)
            except FaceprintError as exc:
                failed.append((i, f"{type(exc).__name__}: {exc}"))
                continue
            if faces:
                candidates.append((i, describe_source(src), faces[0]))
            else:
                failed.append((i, "NoFaceError: no face found"))
        return best_of(candidates, failed)

    def analyze(self, image: ImageSource, *, select: Selection = "all", keep_aligned: bool = False) -> list[Face]:
        """Detect, align and embed the faces of one image."""
        img = self.load(image)
        dets = select_faces(self.detector.detect(img), img.shape, select)
        return self.embed_detections(img, dets, keep_aligned=keep_aligned)

    def embed_one(self, image: ImageSource, *, select: Selection = "largest") -> Face:
        """The single face to use from an image; :class:`NoFaceError` when there is none
        (:class:`~faceprint.errors.LowQualityError` when it is below ``min_quality``,
        :class:`~faceprint.errors.AttackDetectedError` when ``refuse_attacks`` and it scores as an attack)."""
        face = refuse_low_quality(self._main_face(image, select), self.min_quality, describe_source(image))
        return refuse_attack(face, self.refuse_attacks, describe_source(image))

    def _main_face(self, image: ImageSource, select: Selection) -> Face:
        if select == "all":
            raise ConfigurationError("embed_one needs select='largest' or 'central'")
        faces = self.analyze(image, select=select)
        if not faces:
            raise NoFaceError(f"no face found in {describe_source(image)}")
        return faces[0]

    def verify(
        self,
        a: ImageSource,
        b: ImageSource,
        *,
        operating_point_name: str = "fmr=0.001",
        threshold: float | None = None,
        select: Selection = "largest",
    ) -> VerifyResult:
        """1:1 verification of the main face of ``a`` against the main face of ``b``.

        The threshold is the pipeline's calibrated operating point (``"fmr=0.001"`` or
        ``"eer"``, see :meth:`operating_point`) unless ``threshold`` is given. ``select``:
        ``"largest"``, or ``"central"`` for centred crops (LFW and similar datasets).
        """
        fa, fb = (self._main_face(x, select) for x in (a, b))
        assert fa.embedding is not None and fb.embedding is not None
        flags = tuple(
            f
            for f in (
                flag(fa.quality, self.min_quality, "image a"),
                flag(fb.quality, self.min_quality, "image b"),
                attack_flag(fa.attack, "image a") if self.refuse_attacks else None,
                attack_flag(fb.attack, "image b") if self.refuse_attacks else None,
            )
            if f
        )
        if threshold is not None:
            point = OperatingPoint("custom", float(threshold), float("nan"), float("nan"), "user")
        else:
            point = self.operating_point(operating_point_name)
        return VerifyResult(decide(fa.embedding, fb.embedding, point), fa, fb, flags)

    # --- many images -----------------------------------------------------------------------

    def process_batch(self, sources: Sequence[ImageSource], *, select: Selection = "all") -> list[ImageResult]:
        """Decode and detect each image, then embed every face of the batch in one call."""
        results: list[ImageResult] = []
        pending: list[tuple[int, npt.NDArray[np.uint8], list[Detection]]] = []
        for src in sources:
            label = describe_source(src)
            try:
                img = self.load(src)
                dets = [
                    d for d in select_faces(self.detector.detect(img), img.shape, select) if d.landmarks is not None
                ]
            except FaceprintError as exc:
                results.append(ImageResult(label, [], exc))
                continue
            results.append(ImageResult(label, [], None, int(img.shape[1]), int(img.shape[0])))
            if dets:
                pending.append((len(results) - 1, img, dets))
        crops = [align(img, d, self.embedder.template) for _, img, dets in pending for d in dets]
        if crops:
            embs = to_embeddings(self.embedder, self.embedder.embed([c.image for c in crops]))
            flat_images = [img for _, img, dets in pending for _ in dets]
            flat_dets = [d for *_, ds in pending for d in ds]
            quals = self._assess(flat_images, flat_dets, crops)
            attacks = self._screen(flat_images, flat_dets)
            k = 0
            for idx, _img, dets in pending:
                faces = [Face(d, embs[k + j], None, quals[k + j], attacks[k + j]) for j, d in enumerate(dets)]
                k += len(dets)
                results[idx] = self._gated(results[idx], faces)
        return results

    def _gated(self, r: ImageResult, faces: list[Face]) -> ImageResult:
        """``r`` with its faces; with ``min_quality``, faces below it dropped (all below: a LowQualityError);
        with ``refuse_attacks``, faces scored as attacks dropped (all: an AttackDetectedError)."""
        if self.refuse_attacks:
            kept = [f for f in faces if attack_flag(f.attack) is None]
            if faces and not kept:
                try:
                    refuse_attack(faces[0], True, r.source)
                except FaceprintError as exc:
                    return ImageResult(r.source, [], exc, r.width, r.height)
            faces = kept
        if self.min_quality is None:
            return ImageResult(r.source, faces, None, r.width, r.height)
        kept = [f for f in faces if flag(f.quality, self.min_quality) is None]
        if faces and not kept:
            try:
                refuse_low_quality(
                    max(faces, key=lambda f: f.quality.quality if f.quality else 0.0), self.min_quality, r.source
                )
            except FaceprintError as exc:
                return ImageResult(r.source, [], exc, r.width, r.height)
        return ImageResult(r.source, kept, None, r.width, r.height)

    def embed_many(
        self,
        sources: Iterable[ImageSource],
        *,
        select: Selection = "all",
        workers: int | None = None,
        chunk_size: int = 16,
        progress: ProgressHook | None = None,
        total: int | None = None,
        dask: Any = None,
        prealigned: str | None = None,
    ) -> Iterator[ImageResult]:
        """Stream :class:`ImageResult` for each source, in input order (:mod:`faceprint.batch`).

        Args:
            workers: processes to use (None: one per core; 1: this process only).
            chunk_size: images per task sent to a worker.
            progress: called as ``progress(done, total)`` after each chunk.
            total: number of sources, passed to ``progress`` (None if unknown).
            dask: run on a Dask cluster instead: a ``distributed.Client``, a scheduler address
                (``"tcp://host:8786"``) or ``"local"``. Sources travel as paths (workers must see
                the files) or bytes.
            prealigned: the sources already are face crops aligned to this template
                (``"arcface112"``, ``"dlib150"``): detection is skipped, one face per image.

        At most ``2 × workers`` chunks are in flight, so memory stays bounded however many
        sources there are. An error on one source is reported in its result.
        """
        from . import batch
        from .alignment import TEMPLATES

        if prealigned is not None and prealigned not in TEMPLATES:
            raise ConfigurationError(f"prealigned must be one of {', '.join(TEMPLATES)} or None, got {prealigned!r}")
        task: batch.Task = (
            partial(batch.detect_embed, select=select)
            if prealigned is None
            else partial(batch.embed_prealigned, template=prealigned)
        )
        executor = batch.executor_for(workers, dask)
        items = sources if isinstance(executor, batch.InProcess) else (batch.portable(s) for s in sources)
        for _chunk, results in batch.run_chunks(
            self,
            task,
            items,
            executor=executor,
            chunk_size=chunk_size,
            expected_model=batch.model_tag(self),
            progress=progress,
            total=total,
        ):
            yield from results


def _attack_stage(
    pad: str | Sequence[str] | AttackDetector | None, options: Mapping[str, Any]
) -> dict[str, AttackDetector]:
    """``FacePipeline(pad=...)`` as name → built detector: a name or an object (``options`` its
    settings), or several names (``options`` then maps each name to its settings)."""
    if pad is None:
        if options:
            raise ConfigurationError("pad_options needs pad: pass pad='minifasnet' (or another attack detector)")
        return {}
    if isinstance(pad, str):
        return {pad: attack_detectors.create(pad, **options)}
    if isinstance(pad, (tuple, list)):
        names = [str(n) for n in pad]
        if not names or len(set(names)) != len(names):
            raise ConfigurationError(f"pad must name one or more different attack detectors, got {pad!r}")
        unknown = set(options) - set(names)
        if unknown or not all(isinstance(v, Mapping) for v in options.values()):
            raise ConfigurationError(
                "with several attack detectors, pad_options maps each detector's name to its settings "
                f"(got keys {sorted(options)} for detectors {names})"
            )
        return {n: attack_detectors.create(n, **dict(options.get(n, {}))) for n in names}
    if isinstance(pad, AttackDetector):
        return {pad.name: pad}
    raise ConfigurationError(f"pad must be an attack detector name, several names or an AttackDetector, got {pad!r}")


# kept for callers of faceprint < 0.2 (benchmarks/bench_lfw.py); the one implementation is batch.cpu_count
_cpu_count = cpu_count
