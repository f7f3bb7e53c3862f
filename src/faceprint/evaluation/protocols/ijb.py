"""IJB-B / IJB-C in the layout InsightFace distributes: 1:1 template verification and 1:N identification.

IJB loose crops are centred on the labelled face, so the protocols select the central face.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ...errors import ConfigurationError, DataFormatError
from .base import IdentificationProtocol, ImageRef, TemplateSet, VerificationProtocol, _read_text
from .registry import ProtocolKind, ProtocolSource, Task, need_dir, register_protocol_kind

__all__ = ["read_ijb_verification", "read_ijb_identification"]


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
    ``score_protocol`` does both). The loose crops need face detection; the protocol selects the
    face nearest the crop centre (``select="central"``). InsightFace instead aligns them with the
    landmarks of ``*_name_5pts_score.txt``.
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
        select="central",
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
        galleries = _default_galleries(prefix)
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
        name=name or f"{prefix.upper()}-1:N",
        images=images,
        templates=templates,
        galleries=gal,
        probes=pidx,
        select="central",
    )


def _default_galleries(prefix: str) -> tuple[str, ...]:
    return ("S1", "S2") if prefix == "ijbb" else ("G1", "G2")


def _files_read(root: Path, task: Task) -> tuple[Path, ...]:
    """The metadata files a protocol of this task reads (for the report's provenance)."""
    prefix, meta = _ijb_files(root, None)
    names = [f"{prefix}_face_tid_mid.txt"]
    if task == "identification":
        names += [f"{prefix}_1N_gallery_{g}.csv" for g in _default_galleries(prefix)]
        names.append(f"{prefix}_1N_probe_mixed.csv")
    else:
        names.append(f"{prefix}_template_pair_label.txt")
    return tuple(meta / n for n in names)


def open_ijb(data: Path, *, pairs: Path | None, labels: Path | None, task: Task, seed: int) -> ProtocolSource:
    """``--protocol ijb``: the IJBB/IJBC release folder, 1:1 (``task="verification"``) or 1:N."""
    need_dir(data, "IJB folder")
    if task == "identification":
        ip = read_ijb_identification(data)
        return ProtocolSource("ijb", ip, _files_read(data, task), None, f"{ip.name}: open-set 1:N identification")
    vp = read_ijb_verification(data)
    return ProtocolSource("ijb", vp, _files_read(data, task), None, "IJB 1:1 template verification")


register_protocol_kind(
    ProtocolKind(
        "ijb", open_ijb, "ijb: the IJBB or IJBC folder (meta/ inside).", tasks=("verification", "identification")
    )
)
