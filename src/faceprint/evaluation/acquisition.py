"""What the pipeline does with one image of an evaluation, on a worker: detect once, embed the faces
any single-face selection could pick, and send back everything the cache keeps.

Data flow (one image)::

    bytes ──decode──▶ image ──detect (unless its detections are cached)──▶ every face found
        ──candidate_faces: the largest and the central one (with landmarks)──▶ embed them
        ──▶ Acquired(status, size, detections, face index → vector)

The face selection itself (``select="largest"`` / ``"central"``) is applied afterwards, by
:func:`selected_face`, on this result or on the cached one - so changing it embeds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .. import batch
from ..errors import FaceprintError
from ..pipeline import FacePipeline, select_faces
from ..types import Detection
from .cache import CachedImage
from .protocols import SINGLE_FACE_SELECTIONS

__all__ = ["Work", "Acquired", "acquire", "candidate_faces", "selected_face", "error_message"]

log = logging.getLogger(__name__)


class Work(NamedTuple):
    """One image to process: its content hash and bytes, the keys of every image with that content,
    its cached detections (None: detect), and the faces to embed when they are cached."""

    sha: str
    data: bytes
    keys: list[str]
    image: CachedImage | None = None
    faces: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Acquired:
    """What a worker made of one image: ``status`` ``"ok"`` (with ``detections`` and the embeddings
    ``vectors`` of some of them, by detection index), ``"no_face"``, or ``"error"``."""

    status: str
    width: int = 0
    height: int = 0
    detections: tuple[Detection, ...] = ()
    vectors: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)
    error_type: str = ""
    message: str = ""

    def cached(self) -> CachedImage:
        """The per-image record the cache keeps (detections, not embeddings)."""
        if self.status == "ok":
            return CachedImage("ok", self.detections, self.width, self.height)
        if self.status == "no_face":
            return CachedImage("no_face", (), self.width, self.height)
        text = f"{self.error_type}: {self.message}" if self.error_type else self.message
        return CachedImage("error", error=text)


def error_message(exc: BaseException) -> str:
    """An error's message without the ``<source>: `` prefix (results are labelled by image key)."""
    text = str(exc)
    src = getattr(exc, "source", None)
    if src and text.startswith(f"{src}: "):
        return text[len(src) + 2 :]
    return text


def candidate_faces(detections: Sequence[Detection], shape: Sequence[int]) -> tuple[int, ...]:
    """Indices of the faces any single-face selection picks (largest, central), if they can be aligned."""
    dets = list(detections)
    picks = {selected_face(dets, shape, how) for how in SINGLE_FACE_SELECTIONS}
    return tuple(sorted(i for i in picks if i is not None))


def selected_face(detections: Sequence[Detection], shape: Sequence[int], select: str) -> int | None:
    """Index of the face ``select`` picks, or None when there is none it could align (no landmarks)."""
    if not detections:
        return None
    chosen = select_faces(list(detections), tuple(shape), select)[0]  # type: ignore[arg-type]
    if chosen.landmarks is None:
        return None
    return next(i for i, d in enumerate(detections) if d is chosen)


def acquire(pipe: FacePipeline, chunk: list[Work], prealigned: str | None = None) -> list[Acquired]:
    """Worker task (:mod:`faceprint.batch`): one :class:`Acquired` per image of the chunk.

    An error on one image is that image's result; an unexpected exception (a backend bug) too,
    logged with its type, so one bad file never stops the run.
    """
    out: list[Acquired] = []
    for w in chunk:
        try:
            out.append(_acquire_one(pipe, w, prealigned))
        except FaceprintError as exc:
            out.append(Acquired("error", error_type=type(exc).__name__, message=error_message(exc)))
        except Exception as exc:  # noqa: BLE001 - reported in this image's result
            log.warning("unexpected %s on an image: %s", type(exc).__name__, exc)
            out.append(Acquired("error", error_type=type(exc).__name__, message=f"unexpected error: {exc}"))
    return out


def _acquire_one(pipe: FacePipeline, w: Work, prealigned: str | None) -> Acquired:
    img = pipe.load(w.data)
    height, width = int(img.shape[0]), int(img.shape[1])
    if w.image is not None:  # detections from the cache: embed the faces asked for
        dets, wanted = w.image.detections, w.faces
    elif prealigned is not None:
        dets, wanted = (batch.template_detection(img.shape, prealigned),), (0,)
    else:
        dets = tuple(pipe.detect(img))
        if not dets:
            return Acquired("no_face", width, height)
        wanted = candidate_faces(dets, img.shape)
    vectors: dict[int, npt.NDArray[np.float32]] = {}
    for i in wanted:  # one face at a time: the same numbers as embedding that face alone
        faces = pipe.embed_detections(img, [dets[i]])
        if faces and faces[0].embedding is not None:
            vectors[i] = np.asarray(faces[0].embedding.vector, dtype=np.float32)
    return Acquired("ok", width, height, dets, vectors)
