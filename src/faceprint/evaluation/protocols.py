"""Verification and identification protocols: which images to compare and what the truth is.

Every loader returns one common representation, so the runner and the metrics never care where
a protocol came from:

* :class:`ImageRef` - one image, either a file path or in-memory encoded bytes (InsightFace
  ``.bin`` files), with a stable ``key``, optional subject id and demographic group.
* :class:`VerificationProtocol` - 1:1 comparisons as index arrays ``a``, ``b`` into the image
  list (or into a :class:`TemplateSet` for template-based protocols such as IJB-B/C), a boolean
  ``mated`` array, and optional fold ids, subject ids and per-pair groups.
* :class:`IdentificationProtocol` - 1:N: probe templates searched against one or more galleries.

Loaders (users bring the data; nothing is downloaded):

========================================  ======================================================
:func:`read_lfw_protocol`                 LFW View 1 ``pairsDevTrain.txt`` / ``pairsDevTest.txt``
                                          and View 2 ``pairs.txt`` (10 folds)
:func:`read_insightface_bin`              InsightFace ``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``…
:func:`read_ijb_verification`             IJB-B / IJB-C 1:1 template pairs
:func:`read_ijb_identification`           IJB-B / IJB-C 1:N galleries and probes
:func:`folder_protocol`                   one folder per identity, mated + sampled non-mated pairs
:func:`read_csv_protocol`                 ``image_a,image_b,mated[,fold][,group]`` CSV
:func:`load_protocol`                     picks one of the above from a path
========================================  ======================================================

Templates (IJB) are aggregated from image embeddings by :func:`aggregate_templates`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, DataFormatError

__all__ = [
    "Pair",
    "read_lfw_pairs",
    "ImageRef",
    "TemplateSet",
    "VerificationProtocol",
    "IdentificationProtocol",
    "PREALIGNED_TEMPLATES",
    "IMAGE_EXTENSIONS",
    "read_lfw_protocol",
    "read_insightface_bin",
    "read_ijb_verification",
    "read_ijb_identification",
    "aggregate_templates",
    "folder_protocol",
    "read_csv_protocol",
    "load_protocol",
    "kfold_ids",
]

log = logging.getLogger(__name__)

#: Values of ``prealigned``: the alignment template whose crops the images already are.
PREALIGNED_TEMPLATES: tuple[str, ...] = ("arcface112", "dlib150")

#: File name endings :func:`folder_protocol` treats as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


# --- the original LFW pair reader (kept: simple callers use it) -----------------------------


@dataclass(frozen=True, slots=True)
class Pair:
    """Two images and whether they show the same person (mated)."""

    a: Path
    b: Path
    mated: bool
    identity_a: str
    identity_b: str


def read_lfw_pairs(pairs_file: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Read an LFW pairs file (``pairsDevTrain.txt``, ``pairsDevTest.txt`` or View 2 ``pairs.txt``).

    Mated lines are ``name n1 n2``, non-mated ``name1 n1 name2 n2``; a first line of one or two
    integers (the count, or folds and count) is skipped. Images are
    ``<image_root>/<name>/<name>_<nnnn>.jpg``; ``image_root`` defaults to the file's folder.
    """
    path = Path(pairs_file)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read pairs file {path}: {exc.strerror or exc}") from exc

    def img(name: str, num: str) -> Path:
        return root / name / f"{name}_{int(num):04d}.jpg"

    pairs: list[Pair] = []
    for lineno, line in enumerate(lines, 1):
        f = line.split()
        if not f:
            continue
        if lineno == 1 and all(x.isdigit() for x in f):
            continue
        try:
            if len(f) == 3:
                pairs.append(Pair(img(f[0], f[1]), img(f[0], f[2]), True, f[0], f[0]))
            elif len(f) == 4:
                pairs.append(Pair(img(f[0], f[1]), img(f[2], f[3]), False, f[0], f[2]))
            else:
                raise ValueError("expected 3 or 4 fields")
        except ValueError as exc:
            raise ConfigurationError(f"{path}:{lineno}: not an LFW pairs line ({exc}): {line!r}") from None
    return pairs


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
    """

    name: str
    images: list[ImageRef]
    templates: TemplateSet
    galleries: dict[str, npt.NDArray[np.intp]]
    probes: npt.NDArray[np.intp]
    prealigned: str | None = None

    def __post_init__(self) -> None:
        if self.templates.subjects is None:
            raise ConfigurationError("an identification protocol needs a subject id for every template")
        object.__setattr__(self, "probes", _int_array(self.probes, "probes"))
        object.__setattr__(self, "galleries", {k: _int_array(v, f"gallery {k}") for k, v in self.galleries.items()})
        object.__setattr__(self, "prealigned", _check_prealigned(self.prealigned))

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


# --- LFW ----------------------------------------------------------------------------------------


def read_lfw_protocol(
    pairs_file: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
) -> VerificationProtocol:
    """LFW View 1 (``pairsDevTrain.txt`` / ``pairsDevTest.txt``) or View 2 (``pairs.txt``).

    A first line of two integers ``"10 300"`` (View 2) means 10 folds, each of 300 mated pairs
    followed by 300 non-mated pairs: fold ids are recorded. A first line of one integer (View 1)
    gives no folds. Images are ``<image_root>/<name>/<name>_<nnnn>.jpg`` (``image_root``: the
    pairs file's folder); keys are ``<name>/<name>_<nnnn>.jpg``.
    """
    path = Path(pairs_file)
    root = Path(image_root) if image_root is not None else path.parent
    lines = _read_text(path, "LFW pairs file").splitlines()
    header = lines[0].split() if lines else []
    n_sets = per_set = 0
    start = 0
    if header and all(x.isdigit() for x in header) and len(header) in (1, 2):
        start = 1
        if len(header) == 2:
            n_sets, per_set = int(header[0]), int(header[1])

    images: list[ImageRef] = []
    index: dict[str, int] = {}

    def ref(person: str, num: str) -> int:
        key = f"{person}/{person}_{int(num):04d}.jpg"
        i = index.get(key)
        if i is None:
            i = index[key] = len(images)
            images.append(ImageRef(key=key, path=os.fspath(root / key), subject=person))
        return i

    a: list[int] = []
    b: list[int] = []
    mated: list[bool] = []
    sa: list[str] = []
    sb: list[str] = []
    for lineno, line in enumerate(lines[start:], start + 1):
        f = line.split()
        if not f:
            continue
        try:
            if len(f) == 3:
                a.append(ref(f[0], f[1]))
                b.append(ref(f[0], f[2]))
                sa.append(f[0])
                sb.append(f[0])
                mated.append(True)
            elif len(f) == 4:
                a.append(ref(f[0], f[1]))
                b.append(ref(f[2], f[3]))
                sa.append(f[0])
                sb.append(f[2])
                mated.append(False)
            else:
                raise ValueError(f"expected 3 fields (mated) or 4 (non-mated), got {len(f)}")
        except ValueError as exc:
            raise DataFormatError(f"{path}:{lineno}: not an LFW pairs line ({exc}): {line!r}") from None
    folds = None
    if n_sets:
        if len(a) != n_sets * 2 * per_set:
            raise DataFormatError(
                f"{path}:1: header says {n_sets} folds of {per_set} mated + {per_set} non-mated pairs "
                f"({n_sets * 2 * per_set} lines) but the file has {len(a)} pairs"
            )
        folds = np.arange(len(a), dtype=np.int32) // (2 * per_set)
    return VerificationProtocol(
        name=name or f"lfw:{path.stem}",
        images=images,
        a=np.array(a, dtype=np.intp),
        b=np.array(b, dtype=np.intp),
        mated=np.array(mated, dtype=bool),
        folds=folds,
        subject_a=np.array(sa, dtype=np.str_),
        subject_b=np.array(sb, dtype=np.str_),
    )


# --- InsightFace .bin ---------------------------------------------------------------------------

_SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("builtins", "bool"),
        ("_codecs", "encode"),  # how Python 3 protocol-2 pickles store bytes
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # numpy arrays under pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only lists, tuples, bytes, bools and numpy arrays.

    Any other global (``os.system``, ``builtins.eval``, a class) is refused, so a crafted file
    cannot run code while it is being read.
    """

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise DataFormatError(
                f"{self._source}: refusing to load {module}.{name} - an InsightFace verification .bin "
                "holds only image bytes and booleans; this file is something else (or was crafted "
                "to run code). Do not unpickle it with plain pickle."
            )
        if module.startswith("numpy"):
            import importlib

            # numpy 2 moved numpy.core to numpy._core (the old name warns); try the new one first
            for mod in dict.fromkeys(
                (module.replace("numpy.core", "numpy._core"), module, module.replace("numpy._core", "numpy.core"))
            ):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
            raise DataFormatError(f"{self._source}: this numpy cannot read {module}.{name}")
        return super().find_class(module, name)


def _as_bytes(x: Any) -> bytes | None:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    if isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 1:
        return x.tobytes()
    return None


def read_insightface_bin(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    prealigned: str | None = "arcface112",
    n_folds: int = 10,
) -> VerificationProtocol:
    """An InsightFace verification file (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ``calfw.bin``,
    ``cplfw.bin``…).

    The file is a pickle of ``(bins, issame_list)``: ``bins`` holds two encoded JPEG/PNG images per
    pair (consecutive: pair ``i`` is ``bins[2i]``, ``bins[2i+1]``) and ``issame_list`` one boolean
    per pair. Folds are ``n_folds`` contiguous blocks of pairs, as InsightFace's
    ``verification.py`` splits them.

    **Security:** pickle can run arbitrary code while loading. This reader never uses plain
    :func:`pickle.load`: a restricted :class:`pickle.Unpickler` builds only lists, tuples, bytes,
    bools and numpy arrays and refuses every other global with :class:`DataFormatError`. Still,
    only evaluate files from sources you trust.

    The images are 112×112 crops already aligned to the ArcFace template, so the protocol is
    marked ``prealigned="arcface112"`` by default: the runner skips detection and aligns the
    crop from the template's landmark positions (an identity warp for ArcFace-template
    embedders). Pass ``prealigned=None`` to run the face detector on them instead.

    Image keys are ``"<name>#<index in bins>"``; the bytes stay in memory (a few tens of MB).
    """
    p = Path(path)
    label = str(p)
    try:
        with open(p, "rb") as f:
            obj = _RestrictedUnpickler(f, label).load()
    except FileNotFoundError:
        raise DataFormatError(f"{p} does not exist; check the path to the .bin file") from None
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataFormatError(f"{p} is not an InsightFace verification .bin file (cannot unpickle: {exc})") from None
    except OSError as exc:
        raise DataFormatError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise DataFormatError(f"{p}: expected a pickled (bins, issame_list) pair, got {type(obj).__name__}")
    bins, issame = obj
    try:
        mated = np.asarray([bool(x) for x in issame], dtype=bool)
    except TypeError:
        raise DataFormatError(f"{p}: issame_list is not a list of booleans") from None
    if len(bins) != 2 * len(mated):
        raise DataFormatError(
            f"{p}: {len(bins)} images for {len(mated)} pairs; an InsightFace .bin holds exactly two images per pair"
        )
    stem = name or p.stem
    images: list[ImageRef] = []
    for i, x in enumerate(bins):
        data = _as_bytes(x)
        if not data:
            raise DataFormatError(f"{p}: image {i} is {type(x).__name__}, not encoded image bytes")
        images.append(ImageRef(key=f"{stem}#{i}", data=data))
    n = len(mated)
    return VerificationProtocol(
        name=stem,
        images=images,
        a=np.arange(0, 2 * n, 2, dtype=np.intp),
        b=np.arange(1, 2 * n, 2, dtype=np.intp),
        mated=mated,
        folds=kfold_ids(n, n_folds) if n_folds > 1 else None,
        prealigned=prealigned,
    )


# --- IJB-B / IJB-C ------------------------------------------------------------------------------


def _ijb_files(root: Path, dataset: str | None) -> tuple[str, Path]:
    """(file prefix ``ijbb``/``ijbc``, metadata folder) for an IJB release folder."""
    if not root.is_dir():
        raise DataFormatError(f"{root} is not a folder; pass the IJBB or IJBC release folder (with meta/ inside)")
    meta = root / "meta" if (root / "meta").is_dir() else root
    if dataset is None:
        found = sorted(p.name.split("_")[0] for p in meta.glob("ijb?_face_tid_mid.txt"))
        if len(found) != 1:
            raise DataFormatError(
                f"{meta}: expected one ijbb_face_tid_mid.txt or ijbc_face_tid_mid.txt, found "
                f"{found or 'none'}; pass dataset='IJBB' or 'IJBC'"
            )
        return found[0], meta
    prefix = dataset.lower().replace("-", "")
    if prefix not in ("ijbb", "ijbc"):
        raise ConfigurationError(f"dataset must be 'IJBB' or 'IJBC', got {dataset!r}")
    return prefix, meta


def _parse_int_table(path: Path, ncols: int, what: str) -> npt.NDArray[np.int64]:
    """A whitespace-separated table of integers, (rows, ncols); errors name file:line."""
    text = _read_text(path, what)
    # fast path: numpy's text parser; on any problem, re-parse line by line to name the line
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            flat = np.fromstring(text, dtype=np.int64, sep=" ")
        if flat.size % ncols == 0 and flat.size // ncols == sum(1 for ln in text.splitlines() if ln.strip()):
            return flat.reshape(-1, ncols)
    except (ValueError, DeprecationWarning):
        pass
    rows: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) != ncols:
            raise DataFormatError(f"{path}:{lineno}: expected {ncols} integer columns, got {len(f)}: {line!r}")
        try:
            rows.append([int(x) for x in f])
        except ValueError:
            raise DataFormatError(f"{path}:{lineno}: expected integers: {line!r}") from None
    return np.array(rows, dtype=np.int64).reshape(-1, ncols)


def _read_face_tid_mid(path: Path, image_root: Path) -> tuple[list[ImageRef], TemplateSet]:
    text = _read_text(path, "IJB face/template/media list")
    names: list[str] = []
    tids: list[int] = []
    mids: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 3:
            raise DataFormatError(f"{path}:{lineno}: expected 'image_name template_id media_id', got {line!r}")
        try:
            tids.append(int(f[1]))
            mids.append(int(f[2]))
        except ValueError:
            raise DataFormatError(f"{path}:{lineno}: template and media ids must be integers: {line!r}") from None
        names.append(f[0])
    images: list[ImageRef] = []
    index: dict[str, int] = {}
    img_idx = np.empty(len(names), dtype=np.intp)
    for r, nm in enumerate(names):
        i = index.get(nm)
        if i is None:
            i = index[nm] = len(images)
            images.append(ImageRef(key=nm, path=os.fspath(image_root / nm)))
        img_idx[r] = i
    tid_arr = np.array(tids, dtype=np.int64)
    ids, inverse = np.unique(tid_arr, return_inverse=True)
    return images, TemplateSet(ids=ids, image=img_idx, template=inverse.astype(np.intp), media=np.array(mids))


def read_ijb_verification(
    root: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    image_dir: str = "loose_crop",
    name: str | None = None,
) -> VerificationProtocol:
    """IJB-B or IJB-C 1:1 template verification, in the layout InsightFace distributes.

    ``root`` is the ``IJBB`` or ``IJBC`` folder: ``meta/ijbc_face_tid_mid.txt`` (image name,
    template id, media id) and ``meta/ijbc_template_pair_label.txt`` (template 1, template 2,
    label) are read; images are ``<root>/<image_dir>/<name>``. ``a``/``b`` index templates:
    embed the images, then :func:`aggregate_templates`, then compare (the runner's
    ``score_protocol`` does both). The loose crops need face detection (``select="largest"``);
    InsightFace instead aligns them with the landmarks of ``*_name_5pts_score.txt``.
    """
    rootp = Path(root)
    prefix, meta = _ijb_files(rootp, dataset)
    images, templates = _read_face_tid_mid(meta / f"{prefix}_face_tid_mid.txt", rootp / image_dir)
    pair_file = meta / f"{prefix}_template_pair_label.txt"
    table = _parse_int_table(pair_file, 3, "IJB template pair list")
    labels = table[:, 2]
    if labels.size and not np.all(np.isin(labels, (0, 1))):
        bad = int(np.flatnonzero(~np.isin(labels, (0, 1)))[0])
        raise DataFormatError(f"{pair_file}: pair {bad + 1}: label must be 0 or 1, got {labels[bad]}")
    a = templates.index_of(table[:, 0], source=str(pair_file))
    b = templates.index_of(table[:, 1], source=str(pair_file))
    return VerificationProtocol(
        name=name or f"{prefix.upper()}-1:1",
        images=images,
        a=a,
        b=b,
        mated=labels.astype(bool),
        templates=templates,
    )


def _read_template_subjects(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_]]:
    """TEMPLATE_ID and SUBJECT_ID columns of an IJB 1:N CSV, one row per template."""
    text = _read_text(path, "IJB 1:N CSV")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().upper() for h in next(reader)]
    except StopIteration:
        raise DataFormatError(f"{path} is empty; expected a TEMPLATE_ID,SUBJECT_ID,FILENAME,… header") from None
    if "TEMPLATE_ID" not in header or "SUBJECT_ID" not in header:
        raise DataFormatError(f"{path}:1: header must name TEMPLATE_ID and SUBJECT_ID columns, got {header}")
    ti, si = header.index("TEMPLATE_ID"), header.index("SUBJECT_ID")
    seen: dict[int, str] = {}
    for row in reader:
        if not row or not any(c.strip() for c in row):
            continue
        try:
            t = int(row[ti])
            s = row[si].strip()
        except (ValueError, IndexError):
            raise DataFormatError(f"{path}:{reader.line_num}: bad TEMPLATE_ID/SUBJECT_ID in {row!r}") from None
        if seen.setdefault(t, s) != s:
            raise DataFormatError(f"{path}:{reader.line_num}: template {t} has two subject ids ({seen[t]}, {s})")
    return np.array(list(seen), dtype=np.int64), np.array(list(seen.values()), dtype=np.str_)


def read_ijb_identification(
    root: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    galleries: Sequence[str] | None = None,
    probe: str = "mixed",
    image_dir: str = "loose_crop",
    name: str | None = None,
) -> IdentificationProtocol:
    """IJB-B or IJB-C 1:N identification, in the layout InsightFace distributes.

    Template membership comes from ``<prefix>_face_tid_mid.txt`` (as for 1:1); the galleries
    from ``<prefix>_1N_gallery_<G>.csv`` (IJB-C: ``G1``, ``G2``; IJB-B: ``S1``, ``S2``) and the
    probes from ``<prefix>_1N_probe_<probe>.csv`` - of these CSVs only the ``TEMPLATE_ID`` and
    ``SUBJECT_ID`` columns are used.
    """
    rootp = Path(root)
    prefix, meta = _ijb_files(rootp, dataset)
    images, templates = _read_face_tid_mid(meta / f"{prefix}_face_tid_mid.txt", rootp / image_dir)
    if galleries is None:
        galleries = ("S1", "S2") if prefix == "ijbb" else ("G1", "G2")
    subjects = np.full(len(templates), "", dtype=object)
    gal: dict[str, npt.NDArray[np.intp]] = {}
    for g in galleries:
        f = meta / f"{prefix}_1N_gallery_{g}.csv"
        tids, subj = _read_template_subjects(f)
        idx = templates.index_of(tids, source=str(f))
        subjects[idx] = subj
        gal[g] = idx
    pf = meta / f"{prefix}_1N_probe_{probe}.csv"
    ptids, psubj = _read_template_subjects(pf)
    pidx = templates.index_of(ptids, source=str(pf))
    subjects[pidx] = psubj
    templates = TemplateSet(
        ids=templates.ids,
        image=templates.image,
        template=templates.template,
        media=templates.media,
        subjects=np.asarray(subjects.astype(str), dtype=np.str_),
    )
    return IdentificationProtocol(
        name=name or f"{prefix.upper()}-1:N", images=images, templates=templates, galleries=gal, probes=pidx
    )


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


# --- folder per identity --------------------------------------------------------------------------


def _read_labels(path: Path) -> tuple[str | None, dict[str, str]]:
    """(kind ``"identity"``/``"path"``/None when unknown, key → group) from a 2-column CSV."""
    text = _read_text(path, "group label CSV")
    rows = list(csv.reader(io.StringIO(text)))
    kind: str | None = None
    out: dict[str, str] = {}
    start = 0
    if rows and rows[0]:
        h = rows[0][0].strip().lower()
        if h in ("identity", "subject", "subject_id", "name"):
            kind, start = "identity", 1
        elif h in ("path", "image", "file", "filename"):
            kind, start = "path", 1
    for lineno, row in enumerate(rows[start:], start + 1):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2:
            raise DataFormatError(f"{path}:{lineno}: expected 'identity,group' or 'path,group', got {row!r}")
        out[row[0].strip().replace(os.sep, "/")] = row[1].strip()
    return kind, out


def folder_protocol(
    root: str | os.PathLike[str],
    *,
    nonmated: int | None = None,
    seed: int = 0,
    all_pairs_limit: int = 200_000,
    labels: str | os.PathLike[str] | None = None,
    same_group_nonmated: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    name: str | None = None,
) -> VerificationProtocol:
    """A protocol from a folder with one sub-folder of images per identity.

    Every mated pair (two images of one identity) is compared. Non-mated pairs: all of them
    when the number of all image pairs, n(n-1)/2, is at most ``all_pairs_limit``; otherwise a
    uniform sample without repetition of ``nonmated`` pairs (default: as many as there are
    mated pairs, at least 1000), drawn with ``numpy.random.default_rng(seed)`` - the same
    folder and seed always give the same pairs.

    Args:
        labels: a CSV of demographic (or any) groups, ``identity,group`` or ``path,group``
            (path relative to ``root``); an optional header row names the first column
            (``identity``/``subject`` or ``path``/``image``). Pairs get ``groups``; images and
            identities not listed get the group ``""``.
        same_group_nonmated: draw non-mated pairs only between identities of the same group
            (as demographic-differential studies do).

    Identities (folder names) are the subject ids; image keys are ``<identity>/<file>``.
    """
    rootp = Path(root)
    if not rootp.is_dir():
        raise ConfigurationError(f"{rootp} is not a folder; pass a folder with one sub-folder per identity")
    exts = tuple(e.lower() for e in extensions)
    label_kind, label_map = (None, {}) if labels is None else _read_labels(Path(labels))
    images: list[ImageRef] = []
    for sub in sorted(p for p in rootp.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(q for q in sub.iterdir() if q.is_file() and q.suffix.lower() in exts):
            key = f"{sub.name}/{f.name}"
            group = None
            if label_map:
                if label_kind != "path":
                    group = label_map.get(sub.name)
                if group is None and label_kind != "identity":
                    group = label_map.get(key)
                group = group or ""
            images.append(ImageRef(key=key, path=os.fspath(f), subject=sub.name, group=group))
    if len(images) < 2:
        raise ConfigurationError(f"{rootp} holds {len(images)} images in identity sub-folders; need at least 2")
    if label_map and not any(im.group for im in images):
        log.warning("no image or identity of %s is listed in %s", rootp, labels)
    subj = np.array([im.subject for im in images], dtype=np.str_)
    _, subj_id = np.unique(subj, return_inverse=True)
    n = len(images)

    mated_a: list[npt.NDArray[np.intp]] = []
    mated_b: list[npt.NDArray[np.intp]] = []
    for s in np.unique(subj_id):
        idx = np.flatnonzero(subj_id == s)
        if idx.size >= 2:
            i, j = np.triu_indices(idx.size, k=1)
            mated_a.append(idx[i])
            mated_b.append(idx[j])
    ma = np.concatenate(mated_a) if mated_a else np.zeros(0, np.intp)
    mb = np.concatenate(mated_b) if mated_b else np.zeros(0, np.intp)

    grp = np.array([im.group or "" for im in images], dtype=np.str_)

    def allowed(i: npt.NDArray[np.intp], j: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        ok = subj_id[i] != subj_id[j]
        if same_group_nonmated:
            ok &= grp[i] == grp[j]
        return ok

    if n * (n - 1) // 2 <= all_pairs_limit:
        i, j = np.triu_indices(n, k=1)
        keep = allowed(i, j)
        na, nb = i[keep], j[keep]
    else:
        want = nonmated if nonmated is not None else max(len(ma), 1000)
        rng = np.random.default_rng(seed)
        chosen: set[tuple[int, int]] = set()
        tries = 0
        while len(chosen) < want:
            tries += 1
            if tries > 1000:
                raise ConfigurationError(
                    f"could only find {len(chosen)} of {want} distinct non-mated pairs; ask for fewer (nonmated=)"
                )
            draw = rng.integers(0, n, size=(2 * (want - len(chosen)) + 16, 2))
            i = np.minimum(draw[:, 0], draw[:, 1])
            j = np.maximum(draw[:, 0], draw[:, 1])
            keep = allowed(i, j)
            for x, y in zip(i[keep].tolist(), j[keep].tolist(), strict=True):
                if len(chosen) >= want:
                    break
                chosen.add((x, y))
        pairs = np.array(sorted(chosen), dtype=np.intp).reshape(-1, 2)
        na, nb = pairs[:, 0], pairs[:, 1]
    if not len(ma):
        log.warning("no identity in %s has two images: the protocol has no mated pairs", rootp)
    a = np.concatenate([ma, na]).astype(np.intp)
    b = np.concatenate([mb, nb]).astype(np.intp)
    mated = np.concatenate([np.ones(len(ma), bool), np.zeros(len(na), bool)])
    return VerificationProtocol(
        name=name or rootp.name,
        images=images,
        a=a,
        b=b,
        mated=mated,
        subject_a=subj[a],
        subject_b=subj[b],
        groups=_pair_groups(images, a, b) if label_map else None,
    )


# --- plain CSV --------------------------------------------------------------------------------------

_TRUE = {"1", "true", "t", "yes", "y", "mated", "genuine"}
_FALSE = {"0", "false", "f", "no", "n", "non-mated", "nonmated", "impostor"}


def _parse_bool(value: str, where: str, column: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise DataFormatError(f"{where}: {column} must be 1/0 or true/false, got {value!r}")


def read_csv_protocol(
    path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    prealigned: str | None = None,
) -> VerificationProtocol:
    """A protocol from a CSV with header ``image_a,image_b,mated[,fold][,group][,subject_a,subject_b]``.

    Image paths are relative to ``image_root`` (default: the CSV's folder) unless absolute;
    ``mated`` is ``1``/``0`` or ``true``/``false``; ``fold`` an integer. Extra columns are ignored.
    """
    p = Path(path)
    root = Path(image_root) if image_root is not None else p.parent
    text = _read_text(p, "protocol CSV")
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    reader.fieldnames = fields
    missing = [c for c in ("image_a", "image_b", "mated") if c not in fields]
    if missing:
        raise DataFormatError(
            f"{p}:1: header must name image_a,image_b,mated (missing {', '.join(missing)}); got {fields}"
        )
    has_fold = "fold" in fields
    has_group = "group" in fields
    has_subj = "subject_a" in fields and "subject_b" in fields
    images: list[ImageRef] = []
    index: dict[str, int] = {}
    a: list[int] = []
    b: list[int] = []
    mated: list[bool] = []
    folds: list[int] = []
    groups: list[str] = []
    sa: list[str] = []
    sb: list[str] = []

    def ref(value: str, where: str, column: str) -> int:
        v = value.strip()
        if not v:
            raise DataFormatError(f"{where}: {column} is empty")
        full = Path(v) if Path(v).is_absolute() else root / v
        return _image_index(images, index, ImageRef(key=v.replace(os.sep, "/"), path=os.fspath(full)))

    for row in reader:
        where = f"{p}:{reader.line_num}"
        if None in row or any(row.get(c) is None for c in ("image_a", "image_b", "mated")):
            raise DataFormatError(f"{where}: expected {len(fields)} columns ({','.join(fields)})")
        if not any((v or "").strip() for v in row.values()):
            continue
        a.append(ref(row["image_a"], where, "image_a"))
        b.append(ref(row["image_b"], where, "image_b"))
        mated.append(_parse_bool(row["mated"], where, "mated"))
        if has_fold:
            try:
                folds.append(int(row["fold"]))
            except (TypeError, ValueError):
                raise DataFormatError(f"{where}: fold must be an integer, got {row['fold']!r}") from None
        if has_group:
            groups.append((row["group"] or "").strip())
        if has_subj:
            sa.append((row["subject_a"] or "").strip())
            sb.append((row["subject_b"] or "").strip())
    if not a:
        raise DataFormatError(f"{p}: no pairs below the header")
    return VerificationProtocol(
        name=name or p.stem,
        images=images,
        a=np.array(a, dtype=np.intp),
        b=np.array(b, dtype=np.intp),
        mated=np.array(mated, dtype=bool),
        folds=np.array(folds, dtype=np.int32) if has_fold else None,
        subject_a=np.array(sa, dtype=np.str_) if has_subj else None,
        subject_b=np.array(sb, dtype=np.str_) if has_subj else None,
        groups=np.array(groups, dtype=np.str_) if has_group else None,
        prealigned=prealigned,
    )


# --- dispatch ---------------------------------------------------------------------------------------


def load_protocol(path: str | os.PathLike[str], **options: Any) -> VerificationProtocol:
    """Read a verification protocol, choosing the loader from what ``path`` is.

    ``*.bin`` → :func:`read_insightface_bin`; ``*.csv`` → :func:`read_csv_protocol`;
    ``*.txt`` → :func:`read_lfw_protocol`; a folder holding ``ijb?_template_pair_label.txt``
    (or ``meta/`` with it) → :func:`read_ijb_verification`; any other folder →
    :func:`folder_protocol`. ``options`` go to the chosen loader.
    """
    p = Path(path)
    if p.is_dir():
        meta = p / "meta" if (p / "meta").is_dir() else p
        if any(meta.glob("ijb?_template_pair_label.txt")):
            return read_ijb_verification(p, **options)
        return folder_protocol(p, **options)
    suffix = p.suffix.lower()
    if suffix == ".bin":
        return read_insightface_bin(p, **options)
    if suffix == ".csv":
        return read_csv_protocol(p, **options)
    if suffix == ".txt":
        return read_lfw_protocol(p, **options)
    if not p.exists():
        raise ConfigurationError(f"protocol {p} does not exist")
    raise ConfigurationError(
        f"cannot tell what kind of protocol {p} is; use a .bin (InsightFace), .csv, LFW pairs .txt, "
        "an IJB-B/C folder or a folder with one sub-folder per identity"
    )
