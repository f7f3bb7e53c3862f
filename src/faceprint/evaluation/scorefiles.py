"""Score files: the comparison scores of an evaluation, in formats other tools read.

Two families:

``csv``
    A header row ``probe,reference,score,mated`` optionally followed by
    ``probe_subject,reference_subject,group``; ``mated`` is ``1``/``0``. Scores are written
    with ``repr`` precision, so reading a file back gives the same float64 values.
``4col`` / ``5col`` (Bob's plain-text score files, as ``bob.bio.base`` writes them)
    whitespace-separated ``claimed_id real_id probe_label score`` (4 columns) or
    ``claimed_id model_label real_id probe_label score`` (5 columns). ``claimed_id`` is the
    reference's subject, ``real_id`` the probe's; a comparison is mated exactly when
    ``claimed_id == real_id``. The 4-column format has no reference label: reading one gives
    ``reference = claimed_id``.

NaN scores stand for comparisons where a side failed to acquire a face. Score files normally
hold only real comparisons: writing or reading NaN raises :class:`DataFormatError` (naming the
file and line) unless ``allow_nan=True``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, DataFormatError
from .protocols import VerificationProtocol
from .protocols.csvfile import _parse_bool

__all__ = ["ScoreTable", "ScoreFormat", "SCORE_FORMATS", "write_scores", "read_scores", "CSV_COLUMNS"]

ScoreFormat = Literal["csv", "4col", "5col"]
SCORE_FORMATS: tuple[str, ...] = ("csv", "4col", "5col")

#: Required, then optional, columns of the CSV format.
CSV_COLUMNS: tuple[str, ...] = ("probe", "reference", "score", "mated", "probe_subject", "reference_subject", "group")


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """One row per comparison.

    Attributes:
        probe, reference: str (P,) labels of the two sides (image keys or ``template:<id>``).
        score: float64 (P,) similarity, higher is more alike; NaN where a side failed to acquire.
        mated: bool (P,).
        probe_subject, reference_subject, group: str (P,) or None.
    """

    probe: npt.NDArray[np.str_]
    reference: npt.NDArray[np.str_]
    score: npt.NDArray[np.float64]
    mated: npt.NDArray[np.bool_]
    probe_subject: npt.NDArray[np.str_] | None = None
    reference_subject: npt.NDArray[np.str_] | None = None
    group: npt.NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        n = len(np.asarray(self.score))
        for name in ("probe", "reference", "probe_subject", "reference_subject", "group"):
            v = getattr(self, name)
            if v is None:
                continue
            arr = np.asarray(v, dtype=np.str_)
            if arr.shape != (n,):
                raise ConfigurationError(f"ScoreTable.{name} needs {n} entries (one per score), got shape {arr.shape}")
            object.__setattr__(self, name, arr)
        score = np.asarray(self.score, dtype=np.float64)
        mated = np.asarray(self.mated)
        if score.ndim != 1 or mated.shape != score.shape:
            raise ConfigurationError(
                f"score and mated must be 1-D of equal length, got {score.shape} and {mated.shape}"
            )
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "mated", mated.astype(np.bool_))

    def __len__(self) -> int:
        return int(self.score.shape[0])

    @property
    def mated_scores(self) -> npt.NDArray[np.float64]:
        """Scores of mated comparisons (NaN dropped)."""
        s = self.score[self.mated]
        return s[~np.isnan(s)]

    @property
    def nonmated_scores(self) -> npt.NDArray[np.float64]:
        """Scores of non-mated comparisons (NaN dropped)."""
        s = self.score[~self.mated]
        return s[~np.isnan(s)]

    @property
    def genuine(self) -> npt.NDArray[np.float64]:
        """Deprecated name of :attr:`mated_scores` (ISO/IEC 19795-1 says mated)."""
        warnings.warn("ScoreTable.genuine is deprecated; use mated_scores", DeprecationWarning, stacklevel=2)
        return self.mated_scores

    @property
    def impostor(self) -> npt.NDArray[np.float64]:
        """Deprecated name of :attr:`nonmated_scores` (ISO/IEC 19795-1 says non-mated)."""
        warnings.warn("ScoreTable.impostor is deprecated; use nonmated_scores", DeprecationWarning, stacklevel=2)
        return self.nonmated_scores

    def dropna(self) -> ScoreTable:
        """The rows whose score is not NaN (comparisons where both sides acquired a face)."""
        keep = ~np.isnan(self.score)

        def pick(x: Any) -> Any:
            return None if x is None else x[keep]

        return ScoreTable(
            self.probe[keep],
            self.reference[keep],
            self.score[keep],
            self.mated[keep],
            pick(self.probe_subject),
            pick(self.reference_subject),
            pick(self.group),
        )

    @classmethod
    def from_protocol(cls, protocol: VerificationProtocol, scores: npt.ArrayLike) -> ScoreTable:
        """Rows for ``scores`` (float (P,), e.g. from the runner's ``score_protocol``) of ``protocol``:
        side ``b`` is the probe, side ``a`` the reference."""
        s = np.asarray(scores, dtype=np.float64)
        if s.shape != (len(protocol),):
            raise ConfigurationError(f"{len(protocol)} pairs but {s.shape} scores")
        ka, kb = protocol.side_keys()
        subj_a, subj_b = protocol.subject_a, protocol.subject_b
        if (subj_a is None or subj_b is None) and protocol.templates is not None:
            ts = protocol.templates.subjects
            if ts is not None:
                subj_a, subj_b = ts[protocol.a], ts[protocol.b]
        return cls(
            probe=np.array(kb, dtype=np.str_),
            reference=np.array(ka, dtype=np.str_),
            score=s,
            mated=protocol.mated,
            probe_subject=subj_b,
            reference_subject=subj_a,
            group=protocol.groups,
        )


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in SCORE_FORMATS:
            raise ConfigurationError(f"unknown score format {fmt!r}; use one of {', '.join(SCORE_FORMATS)}")
        return fmt
    return "csv" if path.suffix.lower() == ".csv" else "4col"


def _num(x: float) -> str:
    return repr(float(x))


def _check_token(value: str, what: str, row: int) -> str:
    if not value or any(c.isspace() for c in value):
        raise DataFormatError(
            f"row {row}: {what} {value!r} is empty or contains whitespace, which the Bob text format "
            "cannot hold; write a .csv score file instead"
        )
    return value


def write_scores(
    path: str | os.PathLike[str],
    table: ScoreTable,
    *,
    format: ScoreFormat | None = None,
    allow_nan: bool = False,
) -> Path:
    """Write ``table`` to ``path`` (``format``: by suffix, ``.csv`` → csv, anything else → 4col).

    The file is written under a temporary name and renamed, so a crash never leaves half a
    file. NaN scores raise :class:`DataFormatError` unless ``allow_nan`` (then ``nan`` is written;
    drop them first with :meth:`ScoreTable.dropna` to write only real comparisons).
    """
    p = Path(path)
    fmt = _format_of(p, format)
    if not allow_nan and len(table) and np.isnan(table.score).any():
        row = int(np.flatnonzero(np.isnan(table.score))[0])
        raise DataFormatError(
            f"{p}: score of row {row} ({table.probe[row]} vs {table.reference[row]}) is NaN (a side failed "
            "to acquire a face); write table.dropna() or pass allow_nan=True"
        )
    if not p.parent.is_dir():
        raise ConfigurationError(f"folder {p.parent} does not exist; create it before writing {p.name}")
    buf = io.StringIO()
    if fmt == "csv":
        cols = list(CSV_COLUMNS[:4]) + [c for c in CSV_COLUMNS[4:] if getattr(table, c) is not None]
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        extra = [getattr(table, c) for c in cols[4:]]
        for i in range(len(table)):
            w.writerow(
                [table.probe[i], table.reference[i], _num(table.score[i]), "1" if table.mated[i] else "0"]
                + [str(e[i]) for e in extra]
            )
    else:
        claimed, real = _bob_ids(table)
        for i in range(len(table)):
            c = _check_token(claimed[i], "claimed_id", i)
            r = _check_token(real[i], "real_id", i)
            probe = _check_token(str(table.probe[i]), "probe label", i)
            if fmt == "4col":
                buf.write(f"{c} {r} {probe} {_num(table.score[i])}\n")
            else:
                ref = _check_token(str(table.reference[i]), "reference label", i)
                buf.write(f"{c} {ref} {r} {probe} {_num(table.score[i])}\n")
    fd, tmp = tempfile.mkstemp(prefix=".faceprint-", suffix=p.suffix, dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _bob_ids(table: ScoreTable) -> tuple[list[str], list[str]]:
    """(claimed_id, real_id) per row, consistent with ``mated``."""
    if table.probe_subject is not None and table.reference_subject is not None:
        claimed = [str(x) for x in table.reference_subject]
        real = [str(x) for x in table.probe_subject]
        bad = [i for i in range(len(table)) if (claimed[i] == real[i]) != bool(table.mated[i])]
        if bad:
            i = bad[0]
            raise DataFormatError(
                f"row {i}: mated={bool(table.mated[i])} but subjects are {claimed[i]!r} and {real[i]!r}; the Bob "
                "format says mated exactly when the subjects are equal - fix the labels or write a .csv"
            )
        return claimed, real
    # no subject ids: encode the truth through the ids themselves
    claimed = [str(x) for x in table.reference]
    real = [claimed[i] if table.mated[i] else str(table.probe[i]) for i in range(len(table))]
    for i in range(len(table)):
        if not table.mated[i] and real[i] == claimed[i]:
            raise DataFormatError(f"row {i}: a non-mated comparison of {claimed[i]!r} with itself")
    return claimed, real


def _parse_score(value: str, where: str, allow_nan: bool) -> float:
    try:
        s = float(value)
    except ValueError:
        raise DataFormatError(f"{where}: score {value!r} is not a number") from None
    if math.isnan(s) and not allow_nan:
        raise DataFormatError(f"{where}: score is NaN; remove failed comparisons or read with allow_nan=True")
    if math.isinf(s):
        raise DataFormatError(f"{where}: score {value!r} is infinite; scores must be finite")
    return s


def read_scores(
    path: str | os.PathLike[str],
    *,
    format: ScoreFormat | None = None,
    allow_nan: bool = False,
) -> ScoreTable:
    """Read a score file written by :func:`write_scores` or by Bob (4 or 5 columns).

    ``format`` None: ``.csv`` files are CSV; other files are Bob text with 4 or 5 columns,
    told apart by the first line. Malformed lines raise :class:`DataFormatError` naming
    ``file:line``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(f"score file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{p} is not a UTF-8 text score file ({exc.reason})") from None
    except OSError as exc:
        raise DataFormatError(f"cannot read score file {p}: {exc.strerror or exc}") from exc
    fmt = _format_of(p, format)
    if fmt == "csv":
        return _read_csv(p, text, allow_nan)
    return _read_bob(p, text, None if format is None else fmt, allow_nan)


def _read_csv(p: Path, text: str, allow_nan: bool) -> ScoreTable:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataFormatError(f"{p} is empty; expected a header probe,reference,score,mated") from None
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    if missing:
        raise DataFormatError(f"{p}:1: header lacks {', '.join(missing)}; expected probe,reference,score,mated[,…]")
    idx = {c: header.index(c) for c in CSV_COLUMNS if c in header}
    cols: dict[str, list[str]] = {c: [] for c in idx}
    scores: list[float] = []
    mated: list[bool] = []
    for row in reader:
        where = f"{p}:{reader.line_num}"
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataFormatError(f"{where}: expected {len(header)} fields ({','.join(header)}), got {len(row)}")
        scores.append(_parse_score(row[idx["score"]], where, allow_nan))
        mated.append(_parse_bool(row[idx["mated"]], where, "mated"))
        for c, i in idx.items():
            if c not in ("score", "mated"):
                cols[c].append(row[i])
    opt = {c: np.array(cols[c], dtype=np.str_) if c in cols else None for c in CSV_COLUMNS[4:]}
    return ScoreTable(
        probe=np.array(cols["probe"], dtype=np.str_),
        reference=np.array(cols["reference"], dtype=np.str_),
        score=np.array(scores, dtype=np.float64),
        mated=np.array(mated, dtype=bool),
        **opt,
    )


def _read_bob(p: Path, text: str, fmt: str | None, allow_nan: bool) -> ScoreTable:
    claimed: list[str] = []
    model: list[str] = []
    real: list[str] = []
    probe: list[str] = []
    scores: list[float] = []
    ncols = {"4col": 4, "5col": 5}.get(fmt or "", 0)
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f or line.lstrip().startswith("#"):
            continue
        where = f"{p}:{lineno}"
        if not ncols:
            if len(f) not in (4, 5):
                raise DataFormatError(
                    f"{where}: a Bob score file has 4 columns (claimed_id real_id probe_label score) or 5 "
                    f"(claimed_id model_label real_id probe_label score); this line has {len(f)}"
                )
            ncols = len(f)
        if len(f) != ncols:
            raise DataFormatError(f"{where}: expected {ncols} whitespace-separated columns, got {len(f)}: {line!r}")
        scores.append(_parse_score(f[-1], where, allow_nan))
        claimed.append(f[0])
        if ncols == 4:
            real.append(f[1])
            probe.append(f[2])
        else:
            model.append(f[1])
            real.append(f[2])
            probe.append(f[3])
    c = np.array(claimed, dtype=np.str_)
    r = np.array(real, dtype=np.str_)
    return ScoreTable(
        probe=np.array(probe, dtype=np.str_),
        reference=np.array(model, dtype=np.str_) if ncols == 5 else c,
        score=np.array(scores, dtype=np.float64),
        mated=c == r,
        probe_subject=r,
        reference_subject=c,
    )
