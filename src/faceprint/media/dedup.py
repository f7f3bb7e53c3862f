"""Deduplication of a photo collection: exact and near duplicates, the same person, leaks between sets.

Each image is decoded once (:func:`scan_images`) into an :class:`ImageRecord`:

- a **content hash**: SHA-256 of the decoded pixels and their shape, so a re-saved PNG of a
  JPEG's pixels, or the same picture with other metadata, is an exact duplicate;
- a **perceptual hash** (pHash, ``imagehash``) of the image and of its mirror image;
- the **faces**: each face's embedding (the pipeline's recogniser) and a small grey copy of its
  aligned crop.

Two images are **near duplicates** when either

1. their pHashes (one of them mirrored) differ in at most ``phash_bits`` bits; or
2. two of their faces have embeddings at least ``face_similarity`` alike *and* aligned crops
   whose pixels correlate at least ``crop_correlation`` (one of them mirrored).

pHash alone misses crops and rotations (it hashes the whole frame); the embedding alone cannot
tell two photos of one person from two copies of one photo. Alignment undoes crop, scale and
rotation, so copies of one photo have nearly the same aligned pixels while two photos of the
same person do not (other light, expression, background). Different photos of the same person
go to the **identity groups** instead (:func:`faceprint.cluster.cluster_embeddings`).

:func:`find_duplicates` builds the :class:`DedupReport`; with ``against`` (the records of another
collection) it also lists the images and people of this collection found in the other one, e.g.
test-set people present in a training set. Nothing here deletes or moves files: see
:func:`keep_list` and :func:`move_duplicates`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError, FaceprintError
from ._crops import aligned_crop, pixel_descriptor
from ._dedup_groups import UnionFind

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = [
    "ImageRecord",
    "Skipped",
    "DuplicatePair",
    "DedupReport",
    "DedupSettings",
    "scan_images",
    "find_duplicates",
    "keep_list",
    "move_duplicates",
]

log = logging.getLogger(__name__)

#: the aligned crops compared for near duplicates: wide (padding 0.8 around dlib's mean face), so
#: that hair, clothes and background tell two photos of one person apart
CROP_SIZE = 96
CROP_PADDING = 0.8


@dataclass(frozen=True, slots=True)
class DedupSettings:
    """Thresholds of :func:`find_duplicates`, chosen on 300 LFW View 1 images (a seed-0 sample) with 150
    seeded edits: seeded copies had pHash ≤ 2 bits (resize, JPEG, blur, mirror) or 10–16 (crop,
    rotation: caught by the faces), unrelated photos ≥ 8; copies' faces ≥ 0.98 alike with crops
    correlating ≥ 0.9, two photos of one person's crops at most 0.89 at padding 0.8."""

    phash_bits: int = 4  #: pHash Hamming distance (of 64 bits) at most which two images are near duplicates
    face_similarity: float = 0.95  #: cosine of two faces' embeddings at least which their crops are compared
    crop_correlation: float = 0.9  #: correlation of two aligned face crops at least which they are copies
    identity_point: str = "fmr=0.0001"  #: calibrated operating point for same-person groups and leaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "phash_bits": self.phash_bits,
            "face_similarity": self.face_similarity,
            "crop_correlation": self.crop_correlation,
            "identity_point": self.identity_point,
        }


@dataclass(frozen=True, slots=True, eq=False)
class ImageRecord:
    """What deduplication keeps of one image: hashes and, per face, embedding and crop descriptor."""

    path: str
    width: int
    height: int
    content_hash: str
    phash: int
    phash_mirror: int
    embeddings: npt.NDArray[np.float32]  #: (F, D), one row per face
    crops: npt.NDArray[np.float32]  #: (F, 1024) zero-mean unit-norm grey aligned crops
    crops_mirror: npt.NDArray[np.float32]  #: (F, 1024) the same, mirrored

    @property
    def n_faces(self) -> int:
        return int(self.embeddings.shape[0])


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not an image faceprint could read, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two images found to be duplicates, and the evidence."""

    a: int
    b: int
    kind: str  #: "exact" or "near"
    phash_distance: int
    face_similarity: float | None = None
    crop_correlation: float | None = None

    def to_dict(self, paths: Sequence[str], paths_b: Sequence[str] | None = None) -> dict[str, Any]:
        return {
            "a": paths[self.a],
            "b": (paths_b if paths_b is not None else paths)[self.b],
            "kind": self.kind,
            "phash_distance": self.phash_distance,
            "face_similarity": None if self.face_similarity is None else round(self.face_similarity, 4),
            "crop_correlation": None if self.crop_correlation is None else round(self.crop_correlation, 4),
        }


def _phash_lib() -> Any:
    try:
        import imagehash
    except ImportError as exc:
        raise BackendUnavailableError(
            "deduplication needs the imagehash package: pip install 'faceprint[media]'"
        ) from exc
    return imagehash


def _hash_int(h: Any) -> int:
    return int("".join("1" if b else "0" for b in np.asarray(h.hash).ravel()), 2)


def _phashes(image: npt.NDArray[np.uint8]) -> tuple[int, int]:
    from PIL import Image

    ih = _phash_lib()
    im = Image.fromarray(image)
    return _hash_int(ih.phash(im)), _hash_int(ih.phash(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def content_hash(image: npt.NDArray[np.uint8]) -> str:
    """SHA-256 of decoded pixels and their shape (hex)."""
    h = hashlib.sha256(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def record_image(path: str, image: npt.NDArray[np.uint8], pipeline: FacePipeline) -> ImageRecord:
    """Hash one decoded RGB image and embed its faces."""
    dets = [d for d in pipeline.detector.detect(image) if d.landmarks is not None]
    faces = pipeline.embed_detections(image, dets)
    dim = int(getattr(pipeline.embedder, "dim", 0) or 0)
    embs = np.asarray([f.embedding.vector for f in faces if f.embedding is not None], dtype=np.float32)
    embs = embs.reshape(len(faces), embs.shape[1] if len(faces) else dim)
    if dets:
        crops = np.stack([aligned_crop(image, d, CROP_SIZE, CROP_PADDING) for d in dets])
        desc, desc_m = pixel_descriptor(crops), pixel_descriptor(crops[:, :, ::-1])
    else:
        desc = desc_m = np.zeros((0, 1024), dtype=np.float32)
    ph, phm = _phashes(image)
    return ImageRecord(path, int(image.shape[1]), int(image.shape[0]), content_hash(image), ph, phm, embs, desc, desc_m)


def scan_images(
    paths: Iterable[str | os.PathLike[str]],
    pipeline: FacePipeline,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[ImageRecord], list[Skipped]]:
    """Decode, hash and embed each image; files that are not readable images are skipped with the reason."""
    _phash_lib()  # fail before the slow part
    records: list[ImageRecord] = []
    skipped: list[Skipped] = []
    for p in paths:
        name = str(p)
        try:
            img = pipeline.load(name)
            records.append(record_image(name, img, pipeline))
        except FaceprintError as exc:
            skipped.append(Skipped(name, f"{type(exc).__name__}: {exc}"))
        if progress is not None:
            progress(1)
    return records, skipped


# --- comparing records -------------------------------------------------------------------------


def _popcount(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Bits set in each uint64."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def _hash_array(records: Sequence[ImageRecord], mirror: bool = False) -> npt.NDArray[np.uint64]:
    return np.array([r.phash_mirror if mirror else r.phash for r in records], dtype=np.uint64)


def _phash_distances(a: Sequence[ImageRecord], b: Sequence[ImageRecord], block: int = 2048) -> npt.NDArray[np.int64]:
    """(len(a), len(b)) smallest Hamming distance between a's pHash and b's pHash or its mirror's."""
    ha, hb, hbm = _hash_array(a), _hash_array(b), _hash_array(b, True)
    out = np.empty((len(a), len(b)), dtype=np.int64)
    for i in range(0, len(a), block):
        x = ha[i : i + block, None]
        out[i : i + block] = np.minimum(_popcount(x ^ hb[None]), _popcount(x ^ hbm[None]))
    return out


def _faces(records: Sequence[ImageRecord]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], Any, Any]:
    """Image index per face, and stacked embeddings, crops and mirrored crops of all faces."""
    owner = np.concatenate(
        [np.full(r.n_faces, i, dtype=np.int64) for i, r in enumerate(records)] or [np.zeros(0, np.int64)]
    )
    dim = next((r.embeddings.shape[1] for r in records if r.n_faces), 0)
    emb = np.concatenate([r.embeddings for r in records if r.n_faces] or [np.zeros((0, dim), np.float32)])
    crops = np.concatenate([r.crops for r in records if r.n_faces] or [np.zeros((0, 1024), np.float32)])
    mirror = np.concatenate([r.crops_mirror for r in records if r.n_faces] or [np.zeros((0, 1024), np.float32)])
    return owner, emb, crops, mirror


def _pairs(a: Sequence[ImageRecord], b: Sequence[ImageRecord] | None, settings: DedupSettings) -> list[DuplicatePair]:
    """Duplicate pairs within ``a`` (``b`` None; i < j) or between ``a`` and ``b``."""
    other = a if b is None else b
    found: dict[tuple[int, int], DuplicatePair] = {}
    if not a or not other:
        return []
    dist = _phash_distances(a, other)
    # faces: embedding candidates, confirmed by the aligned crops
    oa, ea, ca, _ = _faces(a)
    ob, eb, cb, cbm = _faces(other)
    face_hits: dict[tuple[int, int], tuple[float, float]] = {}
    if len(ea) and len(eb):
        sim = ea @ eb.T
        for fi, fj in zip(*np.nonzero(sim >= settings.face_similarity), strict=True):
            i, j = int(oa[fi]), int(ob[fj])
            if b is None and i >= j:
                continue
            corr = max(float(ca[fi] @ cb[fj]), float(ca[fi] @ cbm[fj]))
            if corr >= settings.crop_correlation:
                best = face_hits.get((i, j))
                if best is None or corr > best[1]:
                    face_hits[(i, j)] = (float(sim[fi, fj]), corr)
    for i, j in zip(*np.nonzero(dist <= settings.phash_bits), strict=True):
        i, j = int(i), int(j)
        if b is None and i >= j:
            continue
        found[(i, j)] = DuplicatePair(i, j, "near", int(dist[i, j]))
    for (i, j), (s, c) in face_hits.items():
        found[(i, j)] = DuplicatePair(i, j, "near", int(dist[i, j]), s, c)
    for (i, j), p in list(found.items()):
        if a[i].content_hash == other[j].content_hash:
            found[(i, j)] = DuplicatePair(i, j, "exact", p.phash_distance, p.face_similarity, p.crop_correlation)
    # exact copies always have pHash distance 0, so every one is in `found` already
    return sorted(found.values(), key=lambda p: (p.a, p.b))


@dataclass(slots=True)
class DedupReport:
    """Outcome of :func:`find_duplicates`; :meth:`to_dict` is the JSON ``faceprint dedup`` writes."""

    paths: list[str]
    skipped: list[Skipped]
    pairs: list[DuplicatePair]
    groups: list[list[int]]  #: duplicate groups (exact or near), indices into ``paths``, largest first
    identity_groups: list[list[int]]  #: images sharing a person (≥ 2 images), largest first
    settings: DedupSettings
    identity_threshold: float | None
    faces: int = 0
    against_paths: list[str] = field(default_factory=list)
    against_pairs: list[DuplicatePair] = field(default_factory=list)  #: a: this set, b: the other set
    against_identities: list[tuple[int, int, float]] = field(default_factory=list)  #: (image, other image, score)

    def redundant(self) -> list[int]:
        """Indices of the images a keep-list leaves out: all but the first of each duplicate group."""
        return sorted(i for g in self.groups for i in g[1:])

    def to_dict(self) -> dict[str, Any]:
        p = self.paths
        doc: dict[str, Any] = {
            "images": len(p),
            "faces": self.faces,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "settings": {**self.settings.to_dict(), "identity_threshold": self.identity_threshold},
            "exact_duplicates": sum(1 for x in self.pairs if x.kind == "exact"),
            "near_duplicates": sum(1 for x in self.pairs if x.kind == "near"),
            "groups": [
                {
                    "keep": p[g[0]],
                    "duplicates": [p[i] for i in g[1:]],
                    "pairs": [x.to_dict(p) for x in self.pairs if x.a in g and x.b in g],
                }
                for g in self.groups
            ],
            "identity_groups": [[p[i] for i in g] for g in self.identity_groups],
        }
        if self.against_paths:
            doc["against"] = {
                "images": len(self.against_paths),
                "duplicates": [x.to_dict(p, self.against_paths) for x in self.against_pairs],
                "identities": [
                    {"image": p[i], "other": self.against_paths[j], "score": round(s, 4)}
                    for i, j, s in self.against_identities
                ],
                "images_with_duplicate": len({x.a for x in self.against_pairs}),
                "images_with_identity": len({i for i, _, _ in self.against_identities}),
            }
        return doc


def _keep_order(records: Sequence[ImageRecord], group: Iterable[int]) -> list[int]:
    """The image to keep first: most pixels, then the first path."""
    return sorted(group, key=lambda i: (-records[i].width * records[i].height, records[i].path))


def _identity_groups(records: Sequence[ImageRecord], threshold: float) -> list[list[int]]:
    from ..cluster import cluster_embeddings

    owner, emb, _, _ = _faces(records)
    if len(emb) < 2:
        return []
    labels = cluster_embeddings(emb, threshold=threshold, min_cluster_size=2).labels
    groups: dict[int, set[int]] = {}
    for lab, i in zip(labels, owner, strict=True):
        if lab >= 0:
            groups.setdefault(int(lab), set()).add(int(i))
    out = [sorted(g) for g in groups.values() if len(g) >= 2]
    return sorted(out, key=lambda g: (-len(g), g[0]))


def find_duplicates(
    records: Sequence[ImageRecord],
    *,
    skipped: Sequence[Skipped] = (),
    against: Sequence[ImageRecord] | None = None,
    settings: DedupSettings | None = None,
    identity_threshold: float | None = None,
) -> DedupReport:
    """Exact and near duplicates, same-person groups and (with ``against``) leaks into another set.

    ``identity_threshold``: cosine at which two faces are the same person (None: no identity
    groups nor identity leaks, e.g. when the caller has no calibrated model).
    """
    s = settings or DedupSettings()
    if s.phash_bits < 0 or s.phash_bits > 64:
        raise ConfigurationError(f"phash_bits must be between 0 and 64, got {s.phash_bits}")
    pairs = _pairs(records, None, s)
    uf = UnionFind(len(records))
    for p in pairs:
        uf.union(p.a, p.b)
    groups = [_keep_order(records, g) for g in uf.groups() if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), records[g[0]].path))
    report = DedupReport(
        [r.path for r in records],
        list(skipped),
        pairs,
        groups,
        _identity_groups(records, identity_threshold) if identity_threshold is not None else [],
        s,
        identity_threshold,
        faces=sum(r.n_faces for r in records),
    )
    if against is not None:
        report.against_paths = [r.path for r in against]
        report.against_pairs = _pairs(records, against, s)
        if identity_threshold is not None:
            oa, ea, _, _ = _faces(records)
            ob, eb, _, _ = _faces(against)
            if len(ea) and len(eb):
                best: dict[int, tuple[int, float]] = {}
                sim = ea @ eb.T
                for fi in range(len(ea)):
                    fj = int(np.argmax(sim[fi]))
                    score = float(sim[fi, fj])
                    i = int(oa[fi])
                    if score >= identity_threshold and (i not in best or score > best[i][1]):
                        best[i] = (int(ob[fj]), score)
                report.against_identities = sorted((i, j, sc) for i, (j, sc) in best.items())
    return report


# --- acting on a report (never deleting) -------------------------------------------------------


def keep_list(report: DedupReport) -> list[str]:
    """Every image of the report but the redundant copies (one image kept per duplicate group)."""
    drop = set(report.redundant())
    return [p for i, p in enumerate(report.paths) if i not in drop]


def move_duplicates(
    report: DedupReport, folder: str | os.PathLike[str], root: str | os.PathLike[str]
) -> list[tuple[str, str]]:
    """Move the redundant copies into ``folder``, keeping their paths relative to ``root``.

    Refuses to overwrite anything in ``folder``; returns (from, to) per file moved.
    """
    dest_root = Path(folder)
    moved: list[tuple[str, str]] = []
    plan: list[tuple[Path, Path]] = []
    for i in report.redundant():
        src = Path(report.paths[i])
        try:
            rel = src.resolve().relative_to(Path(root).resolve())
        except ValueError:
            rel = Path(src.name)
        dst = dest_root / rel
        if dst.exists():
            raise ConfigurationError(f"{dst} already exists; choose an empty --move-to folder")
        plan.append((src, dst))
    for src, dst in plan:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
        moved.append((str(src), str(dst)))
    return moved


def thumbnail(path: str, size: int = 96) -> npt.NDArray[np.uint8] | None:
    """A small RGB copy of an image for the HTML report (None when it cannot be read)."""
    from ..io import load_image

    try:
        img = load_image(path)
    except FaceprintError:
        return None
    h, w = img.shape[:2]
    f = size / max(h, w)
    if f < 1:
        return np.asarray(
            cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    return img
