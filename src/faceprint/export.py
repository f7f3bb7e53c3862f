"""Saving and reading batches of embeddings: ``.npz`` (numpy only) or ``.parquet`` (pyarrow).

One row per face: image path, face index in that image, bbox, detector score, five landmarks,
model tag (``model_id@version``) and the embedding. The file is written to a temporary name and
renamed at the end, so an interrupted run never leaves a half-written file under the real name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import (
    BackendUnavailableError,
    ConfigurationError,
    EmbeddingMismatchError,
    FaceprintError,
)
from .pipeline import ImageResult

__all__ = ["EmbeddingWriter", "EmbeddingTable", "check_output_path", "read_embeddings"]


@dataclass(frozen=True, slots=True)
class EmbeddingTable:
    """Columns of an embeddings file; ``embeddings`` float32 (N, D), the rest length N."""

    paths: npt.NDArray[np.str_]
    face_index: npt.NDArray[np.int32]
    bboxes: npt.NDArray[np.float32]  # (N, 4) x1 y1 x2 y2
    scores: npt.NDArray[np.float32]
    landmarks: npt.NDArray[np.float32]  # (N, 5, 2); NaN where the detector gave none
    embeddings: npt.NDArray[np.float32]
    model: str

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path if it can take an embeddings file (.npz, or .parquet with pyarrow installed)
    in an existing folder; :class:`ConfigurationError` otherwise. Cheap: call it before slow work."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("npz", "parquet"):
        raise ConfigurationError(f"output must end in .npz or .parquet, got {p.name!r}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError("writing .parquet needs pyarrow: pip install 'faceprint[parquet]'") from exc
    if not p.parent.is_dir():
        raise ConfigurationError(f"output folder {p.parent} does not exist")
    if p.is_dir():
        raise ConfigurationError(f"output {p} is a folder; give a file name ending in .npz or .parquet")
    return p


class EmbeddingWriter:
    """Collects :class:`ImageResult` rows and writes them on :meth:`close`.

    ``model`` (``model_id@version``) and ``dim`` describe the embedder, so that a file without
    any face (every image face-less) is still a valid file of that model, with 0 rows.
    """

    def __init__(self, path: str | os.PathLike[str], *, model: str | None = None, dim: int | None = None) -> None:
        self.path = check_output_path(path)
        self.format = self.path.suffix.lower().lstrip(".")
        self._rows: list[tuple[str, int, list[float], float, Any, npt.NDArray[np.float32]]] = []
        self._model: str | None = model
        self._dim = dim
        self.images = 0
        self.images_without_face = 0

    def add(self, result: ImageResult) -> None:
        self.images += 1
        if result.error is None and not result.faces:
            self.images_without_face += 1
        for k, face in enumerate(result.faces):
            if face.embedding is None:
                continue
            if self._model is None:
                self._model = face.embedding.model
            elif face.embedding.model != self._model:
                raise EmbeddingMismatchError(f"one file cannot mix models {self._model} and {face.embedding.model}")
            lm = face.detection.landmarks
            pts = np.full((5, 2), np.nan, np.float32) if lm is None else lm.points
            self._rows.append(
                (result.source, k, face.detection.bbox.as_list(), face.detection.score, pts, face.embedding.vector)
            )

    def close(self) -> dict[str, Any]:
        n = len(self._rows)
        dim = self._rows[0][5].shape[0] if self._rows else (self._dim or 0)
        table = EmbeddingTable(  # reshape(n, ...): a file without faces is valid too, with 0 rows
            paths=np.array([r[0] for r in self._rows], dtype=np.str_),
            face_index=np.array([r[1] for r in self._rows], dtype=np.int32),
            bboxes=np.array([r[2] for r in self._rows], dtype=np.float32).reshape(n, 4),
            scores=np.array([r[3] for r in self._rows], dtype=np.float32),
            landmarks=np.array([r[4] for r in self._rows], dtype=np.float32).reshape(n, 5, 2),
            embeddings=np.array([r[5] for r in self._rows], dtype=np.float32).reshape(n, dim),
            model=self._model or "",
        )
        fd, tmp = tempfile.mkstemp(prefix=".faceprint-", suffix="." + self.format, dir=self.path.parent)
        os.close(fd)
        try:
            if self.format == "npz":
                _write_npz(tmp, table)
            else:
                _write_parquet(tmp, table)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return {
            "output": str(self.path),
            "images": self.images,
            "faces": len(table),
            "images_without_face": self.images_without_face,
            "model": table.model,
            "dim": dim,
        }


def _write_npz(path: str, t: EmbeddingTable) -> None:
    with open(path, "wb") as f:
        np.savez(
            f,
            paths=t.paths,
            face_index=t.face_index,
            bboxes=t.bboxes,
            scores=t.scores,
            landmarks=t.landmarks,
            embeddings=t.embeddings,
            model=np.array(t.model),
        )


def _write_parquet(path: str, t: EmbeddingTable) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = t.embeddings.shape[1] if len(t) else 0
    table = pa.table(
        {
            "path": pa.array(t.paths.tolist(), pa.string()),
            "face_index": pa.array(t.face_index),
            "bbox": pa.FixedSizeListArray.from_arrays(pa.array(t.bboxes.ravel()), 4),
            "score": pa.array(t.scores),
            "landmarks": pa.FixedSizeListArray.from_arrays(pa.array(t.landmarks.ravel()), 10),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(t.embeddings.ravel()), max(dim, 1))
            if dim
            else pa.array([], pa.list_(pa.float32())),
        }
    )
    table = table.replace_schema_metadata({"faceprint.model": t.model, "faceprint.dim": str(t.embeddings.shape[1])})
    pq.write_table(table, path)


def read_embeddings(path: str | os.PathLike[str]) -> EmbeddingTable:
    """Read a file written by :class:`EmbeddingWriter` (``faceprint embed``)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return EmbeddingTable(
                    z["paths"],
                    z["face_index"],
                    z["bboxes"],
                    z["scores"],
                    z["landmarks"],
                    z["embeddings"],
                    str(z["model"]),
                )
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            tb = pq.read_table(p)
            n = tb.num_rows
            meta = tb.schema.metadata or {}
            emb = np.array(tb.column("embedding").to_pylist(), dtype=np.float32)
            emb = emb.reshape(n, -1) if n else emb.reshape(0, int(meta.get(b"faceprint.dim", b"0")))
            return EmbeddingTable(
                np.array(tb.column("path").to_pylist(), dtype=np.str_),
                np.array(tb.column("face_index").to_pylist(), dtype=np.int32),
                np.array(tb.column("bbox").to_pylist(), dtype=np.float32).reshape(n, 4),
                np.array(tb.column("score").to_pylist(), dtype=np.float32),
                np.array(tb.column("landmarks").to_pylist(), dtype=np.float32).reshape(n, 5, 2),
                emb,
                meta.get(b"faceprint.model", b"").decode(),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise FaceprintError(f"{p} is not a faceprint embeddings file: {exc}") from exc
    raise ConfigurationError(f"unknown embeddings file type {suffix!r}; expected .npz or .parquet")
