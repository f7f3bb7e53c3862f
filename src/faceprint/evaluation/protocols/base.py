"""The common representation of every protocol: images, templates, 1:1 pairs, 1:N searches.

* :class:`ImageRef` - one image, either a file path or in-memory encoded bytes (InsightFace
  ``.bin`` files), with a stable ``key``, optional subject id and demographic group.
* :class:`VerificationProtocol` - 1:1 comparisons as index arrays ``a``, ``b`` into the image
  list (or into a :class:`TemplateSet` for template-based protocols such as IJB-B/C), a boolean
  ``mated`` array, and optional fold ids, subject ids and per-pair groups.
* :class:`IdentificationProtocol` - 1:N: probe templates searched against one or more galleries.

Templates (IJB) are aggregated from image embeddings by :func:`aggregate_templates`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import ConfigurationError, DataFormatError

__all__ = [
    "ImageRef",
    "TemplateSet",
    "VerificationProtocol",
    "IdentificationProtocol",
    "PREALIGNED_TEMPLATES",
    "SINGLE_FACE_SELECTIONS",
    "aggregate_templates",
    "kfold_ids",
]

#: Values of ``prealigned``: the alignment template whose crops the images already are.
PREALIGNED_TEMPLATES: tuple[str, ...] = ("arcface112", "dlib150")

#: Values of a protocol's ``select``: the ways to pick one face of an image with several.
SINGLE_FACE_SELECTIONS: tuple[str, ...] = ("largest", "central")


# --- the common representation --------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ImageRef:
    """One image of a protocol: a file ``path`` or encoded ``data`` (exactly one of them).

    ``key`` identifies the image within its protocol (a path relative to the protocol's root,
    or ``"lfw.bin#17"``) and names it in score files and embedding mappings. ``subject`` and
    ``group`` are optional labels (identity, demographic group).
    """

    key: str
    path: str | None = None
    data: bytes | None = field(default=None, repr=False)
    subject: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ConfigurationError(f"image {self.key!r}: give exactly one of path= or data=")
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))
        if not self.key:
            raise ConfigurationError("an image needs a non-empty key")

    @property
    def source(self) -> str | bytes:
        """What :func:`faceprint.io.load_image` accepts: the path, or the encoded bytes."""
        return self.path if self.path is not None else self.data  # type: ignore[return-value]

    def read_bytes(self) -> bytes:
        """The encoded image bytes (reads the file for a path image)."""
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as f:  # type: ignore[arg-type]
            return f.read()

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        *,
        subject: str | None = None,
        group: str | None = None,
    ) -> ImageRef:
        """An image file; its key is the path relative to ``root`` (``/``-separated) when under it."""
        p = os.fspath(path)
        key = p
        if root is not None:
            try:
                key = Path(p).relative_to(root).as_posix()
            except ValueError:
                key = Path(p).as_posix()
        return cls(key=key, path=p, subject=subject, group=group)


def _int_array(x: Any, name: str) -> npt.NDArray[np.intp]:
    a = np.asarray(x)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ConfigurationError(f"{name} must be a 1-D integer array, got shape {a.shape} dtype {a.dtype}")
    return a.astype(np.intp, copy=False)


def _str_array(x: Any, n: int, name: str) -> npt.NDArray[np.str_] | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.str_)
    if a.shape != (n,):
        raise ConfigurationError(f"{name} must have one entry per pair ({n}), got shape {a.shape}")
    return a


def _check_prealigned(prealigned: str | None) -> str | None:
    if prealigned is not None and prealigned not in PREALIGNED_TEMPLATES:
        raise ConfigurationError(
            f"prealigned={prealigned!r} is not an alignment template; use one of "
            f"{', '.join(PREALIGNED_TEMPLATES)} or None (run face detection)"
        )
    return prealigned


def _check_select(select: str | None) -> None:
    if select not in (None, *SINGLE_FACE_SELECTIONS):
        raise ConfigurationError(f"select={select!r}: use one of {', '.join(SINGLE_FACE_SELECTIONS)} or None")


@dataclass(frozen=True, eq=False)
class TemplateSet:
    """Which images make up which template (IJB-style), one row per (image, template) membership.

    Attributes:
        ids: int64 (T,), the template ids as written in the metadata.
        image: intp (R,), index into the protocol's ``images`` of each membership row.
        template: intp (R,), index into ``ids`` of each row.
        media: int64 (R,), the media (photo or video) id of each row; frames of one video share it.
        subjects: str (T,) subject id of each template, or None.
    """

    ids: npt.NDArray[np.int64]
    image: npt.NDArray[np.intp]
    template: npt.NDArray[np.intp]
    media: npt.NDArray[np.int64]
    subjects: npt.NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int64))
        object.__setattr__(self, "image", _int_array(self.image, "TemplateSet.image"))
        object.__setattr__(self, "template", _int_array(self.template, "TemplateSet.template"))
        object.__setattr__(self, "media", np.asarray(self.media, dtype=np.int64))
        if not (len(self.image) == len(self.template) == len(self.media)):
            raise ConfigurationError("TemplateSet.image, .template and .media must have the same length")
        if len(self.template) and (self.template.min() < 0 or self.template.max() >= len(self.ids)):
            raise ConfigurationError("TemplateSet.template holds indices outside ids")
        if self.subjects is not None:
            object.__setattr__(self, "subjects", np.asarray(self.subjects, dtype=np.str_))
            if self.subjects.shape != self.ids.shape:  # type: ignore[union-attr]
                raise ConfigurationError("TemplateSet.subjects needs one entry per template id")

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def index_of(self, template_ids: npt.ArrayLike, *, source: str = "") -> npt.NDArray[np.intp]:
        """Positions in ``ids`` of the given template ids; unknown ids raise :class:`DataFormatError`."""
        want = np.asarray(template_ids, dtype=np.int64)
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        pos = np.searchsorted(sorted_ids, want)
        pos = np.clip(pos, 0, max(len(sorted_ids) - 1, 0))
        found = sorted_ids[pos] == want if len(sorted_ids) else np.zeros(want.shape, bool)
        if not np.all(found):
            missing = np.unique(want[~found])[:5].tolist()
            where = f"{source}: " if source else ""
            raise DataFormatError(
                f"{where}template ids {missing} do not appear in the face/template/media list; "
                "check that both files belong to the same dataset release"
            )
        return order[pos].astype(np.intp)


@dataclass(frozen=True, eq=False)
class VerificationProtocol:
    """A 1:1 protocol: compare ``a[i]`` with ``b[i]``; ``mated[i]`` says whether they are the same person.

    Attributes:
        name: a short label for reports (``"lfw-view2"``, ``"agedb_30"``).
        images: every image the protocol needs, each once.
        a, b: intp (P,), indices into ``images`` - or into ``templates.ids`` when ``templates``
            is set (template-vs-template protocols such as IJB-B/C).
        mated: bool (P,).
        folds: int32 (P,) fold id of each pair (LFW View 2, InsightFace ``.bin``), or None.
        subject_a, subject_b: str (P,) subject ids of each side, or None.
        groups: str (P,) a group label per pair (e.g. demographic), or None. Pairs whose two
            sides carry different groups are labelled ``"<group_a>|<group_b>"``.
        templates: a :class:`TemplateSet` when ``a``/``b`` index templates, else None.
        prealigned: the alignment template the images already are (``"arcface112"`` for
            InsightFace ``.bin`` crops): the runner then skips face detection. None: detect.
        select: the face to use from an image with several when the caller does not say:
            ``"central"`` for datasets of crops centred on the labelled face (LFW, IJB loose
            crops), None when the protocol does not know (the runner then uses ``"largest"``).
    """

    name: str
    images: list[ImageRef]
    a: npt.NDArray[np.intp]
    b: npt.NDArray[np.intp]
    mated: npt.NDArray[np.bool_]
    folds: npt.NDArray[np.int32] | None = None
    subject_a: npt.NDArray[np.str_] | None = None
    subject_b: npt.NDArray[np.str_] | None = None
    groups: npt.NDArray[np.str_] | None = None
    templates: TemplateSet | None = None
    prealigned: str | None = None
    select: str | None = None

    def __post_init__(self) -> None:
        a = _int_array(self.a, "a")
        b = _int_array(self.b, "b")
        mated = np.asarray(self.mated)
        if mated.dtype != np.bool_:
            if mated.size and not np.all(np.isin(mated, (0, 1))):
                raise ConfigurationError("mated must be booleans (or 0/1)")
            mated = mated.astype(np.bool_)
        n = a.shape[0]
        if b.shape != (n,) or mated.shape != (n,):
            raise ConfigurationError(f"a, b and mated must have the same length; got {n}, {b.shape}, {mated.shape}")
        limit = len(self.templates) if self.templates is not None else len(self.images)
        what = "templates" if self.templates is not None else "images"
        for arr, side in ((a, "a"), (b, "b")):
            if n and (arr.min() < 0 or arr.max() >= limit):
                raise ConfigurationError(f"pair side {side} holds indices outside the {limit} {what}")
        folds = None
        if self.folds is not None:
            folds = np.asarray(self.folds).astype(np.int32)
            if folds.shape != (n,):
                raise ConfigurationError(f"folds must have one entry per pair ({n}), got shape {folds.shape}")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "mated", mated)
        object.__setattr__(self, "folds", folds)
        object.__setattr__(self, "subject_a", _str_array(self.subject_a, n, "subject_a"))
        object.__setattr__(self, "subject_b", _str_array(self.subject_b, n, "subject_b"))
        object.__setattr__(self, "groups", _str_array(self.groups, n, "groups"))
        object.__setattr__(self, "prealigned", _check_prealigned(self.prealigned))
        _check_select(self.select)

    def __len__(self) -> int:
        return int(self.a.shape[0])

    @property
    def n_mated(self) -> int:
        return int(np.count_nonzero(self.mated))

    @property
    def n_nonmated(self) -> int:
        return len(self) - self.n_mated

    @property
    def n_folds(self) -> int:
        return 0 if self.folds is None else int(np.unique(self.folds).size)

    def side_keys(self) -> tuple[list[str], list[str]]:
        """Labels of each pair's two sides: image keys, or ``"template:<id>"`` for template protocols."""
        if self.templates is not None:
            ids = self.templates.ids
            return [f"template:{ids[i]}" for i in self.a], [f"template:{ids[i]}" for i in self.b]
        keys = [im.key for im in self.images]
        return [keys[i] for i in self.a], [keys[i] for i in self.b]

    def pairs(self) -> Iterator[tuple[ImageRef, ImageRef, bool]]:
        """(image a, image b, mated) for each pair of an image protocol."""
        if self.templates is not None:
            raise ConfigurationError("this protocol compares templates, not images; use a, b and templates")
        for i, j, m in zip(self.a.tolist(), self.b.tolist(), self.mated.tolist(), strict=True):
            yield self.images[i], self.images[j], bool(m)

    def subset(self, mask: npt.ArrayLike, *, name: str | None = None) -> VerificationProtocol:
        """The protocol restricted to the pairs where ``mask`` (bool (P,) or indices) selects them.

        The image list is kept whole, so embeddings computed for the full protocol still apply.
        """
        sel = np.asarray(mask)
        if sel.dtype == np.bool_ and sel.shape != (len(self),):
            raise ConfigurationError(f"a boolean mask needs one entry per pair ({len(self)})")

        def pick(x: Any) -> Any:
            return None if x is None else x[sel]

        return VerificationProtocol(
            name=name or self.name,
            images=self.images,
            a=self.a[sel],
            b=self.b[sel],
            mated=self.mated[sel],
            folds=pick(self.folds),
            subject_a=pick(self.subject_a),
            subject_b=pick(self.subject_b),
            groups=pick(self.groups),
            templates=self.templates,
            prealigned=self.prealigned,
            select=self.select,
        )

    def fold(self, k: int) -> VerificationProtocol:
        """The pairs of fold ``k``."""
        if self.folds is None:
            raise ConfigurationError(f"protocol {self.name!r} has no folds")
        return self.subset(self.folds == k, name=f"{self.name}[fold {k}]")


@dataclass(frozen=True, eq=False)
class IdentificationProtocol:
    """A 1:N protocol: search each probe template against each gallery.

    Attributes:
        templates: the images of every template (probe and gallery) and their media.
        galleries: name (``"G1"``, ``"G2"``) → intp indices into ``templates.ids``.
        probes: intp indices into ``templates.ids``.
        Subject ids are ``templates.subjects``; a probe whose subject is in no gallery template
        is a non-mated search (open-set identification).
        prealigned, select: as for :class:`VerificationProtocol`.
    """

    name: str
    images: list[ImageRef]
    templates: TemplateSet
    galleries: dict[str, npt.NDArray[np.intp]]
    probes: npt.NDArray[np.intp]
    prealigned: str | None = None
    select: str | None = None

    def __post_init__(self) -> None:
        if self.templates.subjects is None:
            raise ConfigurationError("an identification protocol needs a subject id for every template")
        object.__setattr__(self, "probes", _int_array(self.probes, "probes"))
        object.__setattr__(self, "galleries", {k: _int_array(v, f"gallery {k}") for k, v in self.galleries.items()})
        object.__setattr__(self, "prealigned", _check_prealigned(self.prealigned))
        _check_select(self.select)

    def subjects(self, indices: npt.ArrayLike) -> npt.NDArray[np.str_]:
        """Subject ids of the templates at ``indices``."""
        return np.asarray(self.templates.subjects)[np.asarray(indices, dtype=np.intp)]


# --- helpers ----------------------------------------------------------------------------------


def kfold_ids(n: int, n_folds: int = 10) -> npt.NDArray[np.int32]:
    """Fold id of each of ``n`` pairs in contiguous folds, as ``sklearn.model_selection.KFold(n_folds)``
    without shuffling (InsightFace's ``verification.py``): the first ``n % n_folds`` folds get one
    pair more."""
    if n_folds < 1:
        raise ConfigurationError(f"n_folds must be ≥ 1, got {n_folds}")
    if n < n_folds:
        raise ConfigurationError(f"cannot split {n} pairs into {n_folds} folds; pass a smaller n_folds")
    sizes = np.full(n_folds, n // n_folds, dtype=np.intp)
    sizes[: n % n_folds] += 1
    return np.repeat(np.arange(n_folds, dtype=np.int32), sizes)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(f"{what} {path} does not exist; check the path") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not a UTF-8 text {what} ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataFormatError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _image_index(refs: list[ImageRef], index: dict[str, int], ref: ImageRef) -> int:
    i = index.get(ref.key)
    if i is None:
        i = index[ref.key] = len(refs)
        refs.append(ref)
    return i


def _pair_groups(
    images: Sequence[ImageRef], a: npt.NDArray[np.intp], b: npt.NDArray[np.intp]
) -> npt.NDArray[np.str_] | None:
    if not any(im.group for im in images):
        return None
    g = np.array([im.group or "" for im in images], dtype=np.str_)
    ga, gb = g[a], g[b]
    out = np.where(ga == gb, ga, np.char.add(np.char.add(ga, "|"), gb))
    return np.asarray(out, dtype=np.str_)


def aggregate_templates(
    embeddings: npt.ArrayLike,
    image_index: npt.ArrayLike,
    template_index: npt.ArrayLike,
    media: npt.ArrayLike | None = None,
    *,
    n_templates: int | None = None,
    valid: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Template vectors from image embeddings, as InsightFace's IJB evaluation builds them.

    Each template is the sum over its media of the mean of that media's image embeddings
    (frames of one video count once, like one photo), L2-normalised.

    Args:
        embeddings: float (N, D), one row per image.
        image_index: int (R,), the image of each membership row.
        template_index: int (R,), the template (0 … T-1) of each row.
        media: int (R,), the media id of each row; None: every row is its own media.
        n_templates: T (default: ``max(template_index) + 1``).
        valid: bool (N,), images whose embedding may be used (failures to acquire are False);
            None: rows of ``embeddings`` that are all finite.
        weights: float (R,), optional per-row weights (e.g. detector score), applied before the
            per-media mean. InsightFace's default uses none.

    Returns:
        (float32 (T, D) L2-normalised template vectors - NaN rows for templates with no valid
        image -, bool (T,) which templates have at least one valid image).
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ConfigurationError(f"embeddings must be (N, D), got shape {emb.shape}")
    img = _int_array(image_index, "image_index")
    tpl = _int_array(template_index, "template_index")
    if img.shape != tpl.shape:
        raise ConfigurationError("image_index and template_index must have the same length")
    med = np.arange(len(img), dtype=np.int64) if media is None else np.asarray(media, dtype=np.int64)
    if med.shape != img.shape:
        raise ConfigurationError("media must have one entry per membership row")
    t_count = int(tpl.max()) + 1 if n_templates is None and len(tpl) else int(n_templates or 0)
    if len(img) and (img.min() < 0 or img.max() >= emb.shape[0]):
        raise ConfigurationError("image_index holds indices outside the embedding rows")
    ok_img = np.all(np.isfinite(emb), axis=1) if valid is None else np.asarray(valid, dtype=bool)
    rows = np.flatnonzero(ok_img[img])
    feats = emb[img[rows]]
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != img.shape:
            raise ConfigurationError("weights must have one entry per membership row")
        feats = feats * w[rows, None]
    dim = emb.shape[1]
    out = np.full((t_count, dim), np.nan, dtype=np.float64)
    ok = np.zeros(t_count, dtype=bool)
    if rows.size:
        keys = np.stack([tpl[rows], med[rows]], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        media_sum = np.zeros((len(uniq), dim))
        np.add.at(media_sum, inv, feats)
        media_mean = media_sum / np.bincount(inv, minlength=len(uniq))[:, None]
        tsum = np.zeros((t_count, dim))
        np.add.at(tsum, uniq[:, 0], media_mean)
        ok[uniq[:, 0]] = True
        norms = np.linalg.norm(tsum, axis=1)
        ok &= norms > 0
        out[ok] = tsum[ok] / norms[ok, None]
    return out.astype(np.float32), ok
