"""Moving a gallery's contents: export to one portable file, import from it, migrate to a new model."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, FaceprintError, GalleryError
from .core import as_matrix, model_tag, pipeline_settings
from .enrolment import DEFAULT_BATCH, EnrolmentMixin, ProgressHook
from .files import atomic_write
from .names import check_stored_name
from .values import GallerySettings, MigrationReport, NewTemplate, Template, _iso, bbox_tuple

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = ["TransferMixin", "read_export", "EXPORT_FORMAT", "EXPORT_VERSION"]

log = logging.getLogger(__name__)

#: ``format`` field of an exported gallery file.
EXPORT_FORMAT = "faceprint-gallery-export"
EXPORT_VERSION = 1


class TransferMixin(EnrolmentMixin):
    """``export``, ``import_from`` and ``migrate``."""

    def export(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Write the whole gallery to one portable ``.npz`` file (numpy only, no pickle).

        The file holds ``vectors`` (float32 (N, D)), ``template_ids`` and a JSON ``manifest`` with
        the settings, every subject and every template's fields. Source images are not included.
        """
        p = Path(path)
        if p.suffix.lower() != ".npz":
            raise ConfigurationError(f"export writes an .npz file; got {p.name!r}")
        if not p.parent.exists():
            raise ConfigurationError(f"output folder {p.parent} does not exist")
        tpl_rows: list[dict[str, Any]] = []
        ids: list[int] = []
        vectors = _stack(self._export_rows(tpl_rows, ids), self._settings.dim or 0)
        subjects = [
            {"name": s.name, "metadata": s.metadata, "created": s.created, "updated": s.updated}
            for s in self.subjects()
        ]
        manifest = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": _iso(time.time()),
            "source": {"backend": self.backend, "location": self.location},
            "settings": self._settings.to_dict(),
            "subjects": subjects,
            "templates": tpl_rows,
        }
        try:
            _write_private(p, vectors, np.asarray(ids, np.int64), json.dumps(manifest))
        except OSError as exc:
            raise GalleryError(f"cannot write the export {p}: {exc}") from exc
        return {"output": str(p), "subjects": len(subjects), "templates": len(ids), "model": self._settings.model}

    def _export_rows(self, rows: list[dict[str, Any]], ids: list[int]) -> Iterator[npt.NDArray[np.float32]]:
        """Every template's vector, recording its fields in ``rows`` and its id in ``ids``."""
        for t in self.templates(with_vectors=True):
            d = t.to_dict()
            d["created"], d["updated"] = t.created, t.updated
            rows.append(d)
            ids.append(t.id)
            assert t.vector is not None
            yield t.vector

    def import_from(
        self,
        path: str | os.PathLike[str] | tuple[dict[str, Any], npt.NDArray[np.float32]],
        *,
        batch_size: int = DEFAULT_BATCH,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Add every subject and template of an exported file (merged into same-named subjects).

        ``path`` may also be what :func:`read_export` returned for it. The whole file is checked
        before anything is written. An empty gallery also takes over the exported strategy,
        pipeline and calibration. Templates get new ids; their old ids are kept in their metadata
        as ``"imported_id"``.
        """
        p = Path(label or "export") if isinstance(path, tuple) else Path(path)
        manifest, vectors = path if isinstance(path, tuple) else read_export(p)
        exported = GallerySettings.from_dict(manifest["settings"])
        tpls = manifest["templates"]
        if exported.model is not None:
            self._check_model_tag(exported.model, exported.dim, what=f"the export {p.name}")
        was_empty = self.store.counts()[1] == 0 and self._settings.model is None
        sub_md = {s["name"]: s.get("metadata") or {} for s in manifest["subjects"]}
        added = 0
        for start in range(0, len(tpls), batch_size):
            rows = [
                _imported_row(t, v)
                for t, v in zip(tpls[start : start + batch_size], vectors[start : start + batch_size], strict=True)
            ]
            subject_md = {s: sub_md.get(s, {}) for s in {r.subject for r in rows}}
            self._commit(rows, subject_md, check_names=True, want_templates=False)
            added += len(rows)
        empty = {name: md for name, md in sub_md.items() if self.store.subject(name) is None}
        if empty:  # subjects exported without templates
            self._commit([], empty, want_templates=False)
        if was_empty:
            with self._lock:
                s = self.settings
                s.strategy, s.pipeline, s.calibration = exported.strategy, exported.pipeline, exported.calibration
                s.model = s.model or exported.model
                s.dim = s.dim or exported.dim
                self._write_settings(s)
        return {"input": str(p), "subjects": len(sub_md), "templates": added}

    def migrate(
        self,
        pipeline: FacePipeline,
        *,
        drop_unmigratable: bool = False,
        workers: int | None = 1,
        progress: ProgressHook | None = None,
    ) -> MigrationReport:
        """Re-embed every template with ``pipeline`` (a new model) from its stored source image.

        The face is found again in the stored image and the one overlapping the template's bbox
        most is embedded. Templates without a stored source (enrolled from embeddings, or the
        gallery does not keep images) are listed in ``missing``; nothing changes while any
        template is missing or failed unless ``drop_unmigratable`` (then they are removed).
        The open-set calibration is cleared: recalibrate afterwards.
        """
        new_model = model_tag(pipeline)
        old_model = self._settings.model
        root = self._image_dir()
        todo, missing = self._migratable()
        if missing and not drop_unmigratable:
            return MigrationReport(False, old_model, new_model, 0, missing)
        assert root is not None or not todo
        results = pipeline.embed_many(
            [str(root / t.source) for t in todo],  # type: ignore[operator]
            select="all",
            workers=workers,
            progress=progress,
            total=len(todo),
        )
        new_vecs, failed = _reembedded(todo, results)
        if failed and not drop_unmigratable:
            return MigrationReport(False, old_model, new_model, 0, missing, failed)
        drop = [tid for _s, tid, _r in missing + failed]
        s = self.settings
        s.model = new_model
        s.dim = int(pipeline.embedder.dim)
        s.pipeline = pipeline_settings(pipeline)  # None for custom objects: pass the pipeline when reopening
        if s.calibration:
            log.warning("migration cleared the open-set calibration: recalibrate with gallery.calibrate(...)")
        s.calibration = None
        with self._lock:
            change = self.store.replace_vectors(new_vecs, drop, s)
            self._settings = s
            self._apply(change)
            self._pipeline = pipeline
        return MigrationReport(True, old_model, new_model, len(new_vecs), missing, failed, dropped=len(drop))

    def _migratable(self) -> tuple[list[Template], list[tuple[str, int, str]]]:
        """(templates whose stored source image can be re-embedded, (subject, id, reason) of the others)."""
        root = self._image_dir()
        missing: list[tuple[str, int, str]] = []
        todo: list[Template] = []
        for t in self.templates():
            if t.source is None:
                why = (
                    "no source image stored (the gallery does not keep source images)"
                    if not self._settings.keep_source_images
                    else "no source image stored (enrolled from an embedding)"
                )
                missing.append((t.subject, t.id, why))
            elif root is None or not (root / t.source).is_file():
                missing.append((t.subject, t.id, f"source image file {t.source} is missing"))
            else:
                todo.append(t)
        return todo, missing


def _stack(vectors: Iterator[npt.NDArray[np.float32]], dim: int) -> npt.NDArray[np.float32]:
    chunks: list[npt.NDArray[np.float32]] = []
    chunk: list[npt.NDArray[np.float32]] = []
    for v in vectors:
        chunk.append(v)
        if len(chunk) >= 65536:
            chunks.append(np.stack(chunk))
            chunk = []
    if chunk:
        chunks.append(np.stack(chunk))
    return np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)


def _write_private(p: Path, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], manifest: str) -> None:
    """``np.savez`` to a 0600 temporary file beside ``p``, then renamed over it (atomic)."""
    atomic_write(
        p, lambda f: np.savez(f, vectors=vectors, template_ids=ids, manifest=np.array(manifest)), prefix=".faceprint-"
    )


def read_export(path: str | os.PathLike[str]) -> tuple[dict[str, Any], npt.NDArray[np.float32]]:
    """The manifest and the (L2-normalised) vectors of an export, checked whole before anything is
    written: :class:`~faceprint.errors.GalleryError` for a file that is not one, truncated, or
    inconsistent (so an import writes nothing from a bad file)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            manifest = json.loads(str(z["manifest"]))
            vectors = np.asarray(z["vectors"], np.float32)
    except Exception as exc:  # truncated zip, bad JSON, pickled data, missing arrays: all "not an export"
        raise GalleryError(f"{p} is not a faceprint gallery export ({type(exc).__name__}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise GalleryError(f"{p} is not a faceprint gallery export")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > EXPORT_VERSION:
        raise GalleryError(f"{p} is a faceprint gallery export of a version this faceprint does not read")
    try:
        _check_manifest(manifest, vectors)
        vectors = as_matrix(vectors, None) if vectors.size else vectors
    except (FaceprintError, KeyError, TypeError, ValueError) as exc:
        raise GalleryError(f"{p} is not a valid faceprint gallery export: {exc}") from exc
    return manifest, vectors


def _check_manifest(manifest: dict[str, Any], vectors: npt.NDArray[np.float32]) -> None:
    settings, subjects, tpls = manifest["settings"], manifest["subjects"], manifest["templates"]
    if not isinstance(settings, dict) or not isinstance(subjects, list) or not isinstance(tpls, list):
        raise ValueError("settings, subjects and templates must be an object and two lists")
    if vectors.ndim != 2 or len(tpls) != vectors.shape[0]:
        raise ValueError(f"{len(tpls)} templates for vectors of shape {vectors.shape}")
    dim = GallerySettings.from_dict(settings).dim
    if vectors.size and dim is not None and vectors.shape[1] != dim:
        raise ValueError(f"{vectors.shape[1]}-D vectors in an export of {dim}-D templates")
    for s in subjects:
        check_stored_name(s["name"])
        if not isinstance(s.get("metadata") or {}, dict):
            raise ValueError(f"subject {s['name']!r} has metadata that is not an object")
    for t in tpls:
        check_stored_name(t["subject"])
        if not isinstance(t["model"], str) or not isinstance(t.get("metadata") or {}, dict):
            raise ValueError(f"template {t.get('id')!r} has a bad model or metadata")
        int(t["id"])
        bbox_tuple(t.get("bbox"))


def _imported_row(t: dict[str, Any], v: npt.NDArray[np.float32]) -> NewTemplate:
    return NewTemplate(
        subject=t["subject"],
        vector=v,
        model=t["model"],
        image_sha256=t.get("image_sha256"),
        bbox=bbox_tuple(t.get("bbox")),
        quality=t.get("quality"),
        metadata={**(t.get("metadata") or {}), "imported_id": t["id"]},
        source=None,
        created=float(t.get("created") or time.time()),
    )


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _reembedded(
    todo: Sequence[Template], results: Any
) -> tuple[dict[int, npt.NDArray[np.float32]], list[tuple[str, int, str]]]:
    """New vectors by template id (the face overlapping the old bbox most), and the failures."""
    failed: list[tuple[str, int, str]] = []
    new_vecs: dict[int, npt.NDArray[np.float32]] = {}
    for t, res in zip(todo, results, strict=True):
        if res.error is not None or not res.faces:
            why = f"{type(res.error).__name__}: {res.error}" if res.error else "no face found by the new pipeline"
            failed.append((t.subject, t.id, why))
            continue
        if t.bbox is not None:
            ref = tuple(t.bbox.as_list())
            face = max(res.faces, key=lambda f: _iou(tuple(f.detection.bbox.as_list()), ref))
        else:
            face = max(res.faces, key=lambda f: f.detection.bbox.area)
        assert face.embedding is not None
        new_vecs[t.id] = face.embedding.vector
    return new_vecs, failed
