"""Conformance checks every gallery backend must pass: ours (SQLite + faiss, milvus-lite), or a
third party's template store, in its own test suite.

Like scikit-learn's ``estimator_checks``: one function per property of the
:class:`~faceprint.gallery.Gallery` contract (``check_…``), run against a
:class:`GalleryBackend` — a name and a function that opens a gallery at a location — and
:func:`parametrize_with_checks`, which turns them into one pytest test per check per backend.
Each check works in a temporary folder of its own and closes every gallery it opens.
A store author composes a gallery from the store and tests it with::

    from faceprint.gallery import Gallery
    from faceprint.testing.gallery import GalleryBackend, parametrize_with_checks

    def open_mine(location, *, create=None, **options):
        store = MyStore(location, create=create)
        return Gallery(store, MyIndex(store), **options)

    @parametrize_with_checks([GalleryBackend("mystore", open_mine)])
    def test_gallery_conformance(backend, check):
        check(backend)

``open(location, **options)`` takes ``create`` (None: open or create; True: create, failing if
it exists; False: open, failing if missing) and the creation options of
:func:`~faceprint.gallery.open_gallery` (``strategy``, ``keep_source_images``, ``pipeline``).
The checks need pytest and numpy, no model and no image: they enrol synthetic embeddings.
"""

from __future__ import annotations

import importlib.util
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from ..errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    GalleryError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from ..gallery import Gallery, open_gallery
from ..types import BBox, Embedding

__all__ = [
    "GalleryBackend",
    "Galleries",
    "SQLITE",
    "MILVUS_LITE",
    "gallery_checks",
    "parametrize_with_checks",
    "unit_vectors",
    "emb",
    "MODEL_ID",
    "MODEL_VERSION",
]

#: The synthetic model of the checks' embeddings.
MODEL_ID, MODEL_VERSION = "test-model", "1"
TAG = f"{MODEL_ID}@{MODEL_VERSION}"


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> npt.NDArray[np.float32]:
    """``n`` random L2-normalised float32 vectors (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def emb(v: npt.ArrayLike, model_id: str = MODEL_ID, version: str = MODEL_VERSION) -> Embedding:
    """``v`` as an :class:`~faceprint.types.Embedding` of the checks' model."""
    return Embedding(np.asarray(v, np.float32), model_id, version)


# --- backends -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryBackend:
    """A gallery backend under test.

    Args:
        name: the name in test ids.
        open: ``open(location, **options) -> Gallery`` (see the module docstring).
        suffix: appended to a gallery's name to make its location (``".db"`` for milvus-lite).
        requires: importable modules the backend needs; its checks are skipped without them.
    """

    name: str
    open: Callable[..., Gallery]
    suffix: str = ""
    requires: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    @contextmanager
    def galleries(self) -> Iterator[Galleries]:
        """Galleries of this backend in a new temporary folder (all closed, folder removed, at the end)."""
        with tempfile.TemporaryDirectory(prefix=f"faceprint-{self.name}-") as tmp:
            g = Galleries(self, Path(tmp))
            try:
                yield g
            finally:
                g.close_all()


class Galleries:
    """``make(name="g", **options)`` opens gallery ``name`` of one backend in one folder (``root``)."""

    def __init__(self, backend: GalleryBackend, root: Path) -> None:
        self.backend = backend
        self.root = root
        self._opened: list[Gallery] = []

    def location(self, name: str = "g") -> str:
        return str(self.root / f"{name}{self.backend.suffix}")

    def __call__(self, name: str = "g", **options: Any) -> Gallery:
        g = self.backend.open(self.location(name), **options)
        self._opened.append(g)
        return g

    def close_all(self) -> None:
        for g in self._opened:
            g.close()


#: faceprint's embedded backend: a folder, SQLite + faiss.
SQLITE = GalleryBackend("sqlite", lambda loc, **o: open_gallery(loc, backend="sqlite", **o))
#: Milvus in-process (milvus-lite): a ``.db`` file.
MILVUS_LITE = GalleryBackend(
    "milvus", lambda loc, **o: open_gallery(loc, backend="milvus", **o), ".db", ("pymilvus", "milvus_lite")
)


# --- the checks ---------------------------------------------------------------------------------


def check_enrol_then_identify_ranks_the_mate_first(backend: GalleryBackend) -> None:
    """Enrolled templates are found again: the mate ranks first, subjects (not templates) are ranked."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(60)
        g = make_gallery()
        assert g.model is None and len(g) == 0
        g.enroll_embeddings("ada", [emb(x[0]), emb(x[1])], metadata={"source": "a"})
        added = g.enroll_many([f"p{i}" for i in range(2, 60)], x[2:], model=TAG, batch_size=16)
        assert added == 58 and len(g) == 59 and g.model == TAG and g.dim == 32
        r = g.identify(emb(x[1]), k=3, threshold=-math.inf)
        assert [c.rank for c in r.candidates] == [1, 2, 3]
        assert r.best is not None and r.best.subject == "ada" and r.best.score == pytest.approx(1.0, abs=1e-5)
        assert r.candidates[0].score >= r.candidates[1].score >= r.candidates[2].score
        assert len({c.subject for c in r.candidates}) == 3  # subjects, not templates
        many = g.identify_many(x[10:13], k=1, threshold=-math.inf)
        assert [m.best.subject for m in many] == ["p10", "p11", "p12"]  # type: ignore[union-attr]


def check_search_is_faiss_style_with_minus_one_padding(backend: GalleryBackend) -> None:
    """``search(x, k)`` returns faiss's ``(D, I)``: float32/int64 (N, k), best first, ``-1``/``-inf`` padding."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(5)
        g = make_gallery()
        d0, i0 = g.search(x[0], 3)  # empty gallery
        assert (i0 == -1).all() and np.isneginf(d0).all()
        ids = [t.id for t in g.enroll_embeddings("a", [emb(v) for v in x])]
        d, i = g.search(x[:2], 8)
        assert d.shape == (2, 8) and i.shape == (2, 8) and d.dtype == np.float32 and i.dtype == np.int64
        assert i[0, 0] == ids[0] and i[1, 0] == ids[1]
        assert (i[:, 5:] == -1).all() and np.isneginf(d[:, 5:]).all()
        assert set(i[0, :5].tolist()) == set(ids)
        assert np.all(np.diff(d[0, :5]) <= 1e-6)


def check_max_and_mean_strategies_rank_differently(backend: GalleryBackend) -> None:
    """A subject scores the max or the mean of its templates' scores, as asked."""
    with backend.galleries() as make_gallery:
        dim = 8
        q = np.eye(dim, dtype=np.float32)[0]
        spike = [q, -q + 0.01 * np.eye(dim, dtype=np.float32)[1]]  # one perfect, one opposite template
        steady = [
            np.array([0.8, 0.6, 0, 0, 0, 0, 0, 0], np.float32),
            np.array([0.8, 0, 0.6, 0, 0, 0, 0, 0], np.float32),
        ]
        g = make_gallery()
        g.enroll_embeddings("spike", [emb(v) for v in spike])
        g.enroll_embeddings("steady", [emb(v) for v in steady])
        by_max = g.identify(emb(q), k=2, threshold=-math.inf, strategy="max")
        by_mean = g.identify(emb(q), k=2, threshold=-math.inf, strategy="mean")
        assert [c.subject for c in by_max.candidates] == ["spike", "steady"]
        assert [c.subject for c in by_mean.candidates] == ["steady", "spike"]
        assert by_mean.candidates[0].score == pytest.approx(0.8, abs=1e-5) and by_mean.candidates[0].n_templates == 2
        g.configure(strategy="mean")
        assert g.identify(emb(q), k=1, threshold=-math.inf).best.subject == "steady"  # type: ignore[union-attr]
        with pytest.raises(ConfigurationError, match="max.*mean"):
            g.identify(emb(q), strategy="median")  # type: ignore[arg-type]


def check_other_models_are_refused_with_a_clear_error(backend: GalleryBackend) -> None:
    """Templates and probes of another model or dimension are refused, and nothing is written."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(3)
        g = make_gallery()
        g.enroll_embeddings("a", emb(x[0]))
        with pytest.raises(EmbeddingMismatchError, match=r"holds templates of test-model@1.*other@2.*migrate"):
            g.enroll_embeddings("b", emb(x[1], "other", "2"))
        with pytest.raises(EmbeddingMismatchError, match="other@2"):
            g.identify(emb(x[1], "other", "2"))
        with pytest.raises(EmbeddingMismatchError):
            g.verify(emb(x[1], MODEL_ID, "2"), "a")
        with pytest.raises(EmbeddingMismatchError, match="dimension"):
            g.search(np.ones(16, np.float32), 1)
        with pytest.raises(EmbeddingMismatchError, match="mixes"):
            g.enroll_embeddings("c", [emb(x[1]), emb(x[2], "other", "2")])
        with pytest.raises(ConfigurationError, match="model="):
            g.enroll_many(["c"], x[1:2])
        assert len(g) == 1 and sum(1 for _ in g.templates()) == 1  # nothing written by the failures


def check_everything_persists_across_close_and_reopen(backend: GalleryBackend) -> None:
    """Settings, subjects, templates (with every field) and the calibration survive close and reopen."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(4)
        with make_gallery("g", create=True, strategy="mean") as g:
            t = g.enroll_embeddings(
                "ada",
                [emb(x[0]), emb(x[1])],
                image_sha256=["ab" * 32, None],
                bboxes=[BBox(1, 2, 30, 40), None],
                qualities=[0.75, None],
                metadata=[{"camera": "gate 1"}, {}],
                subject_metadata={"employee": 42},
            )
            g.enroll_embeddings("bob", emb(x[2]))
            g.calibrate(unit_vectors(50, seed=9), fpir=0.1)
            thr = g.settings.calibration["threshold"]  # type: ignore[index]
        with pytest.raises(GalleryError, match="already exists"):
            make_gallery("g", create=True)
        with make_gallery("g", create=False) as g:
            assert g.model == TAG and g.settings.strategy == "mean" and len(g) == 2
            assert g.settings.calibration["threshold"] == pytest.approx(thr)  # type: ignore[index]
            s = g.subject("ada")
            assert s.n_templates == 2 and s.metadata == {"employee": 42} and s.created <= s.updated
            tpls = sorted(g.templates("ada", with_vectors=True), key=lambda tp: tp.image_sha256 is None)
            assert {tp.id for tp in tpls} == {tp.id for tp in t}
            a = tpls[0]
            assert a.image_sha256 == "ab" * 32 and a.bbox == BBox(1, 2, 30, 40) and a.quality == pytest.approx(0.75)
            assert a.metadata == {"camera": "gate 1"} and a.created > 0 and a.model == TAG
            np.testing.assert_allclose(a.embedding.vector, x[0], atol=1e-6)
            assert tpls[1].bbox is None and tpls[1].quality is None
            assert g.identify(emb(x[2]), k=1, threshold=-math.inf).best.subject == "bob"  # type: ignore[union-attr]
        with pytest.raises(GalleryError, match="no gallery"):
            make_gallery("missing", create=False)


def check_remove_rename_list_and_stats(backend: GalleryBackend) -> None:
    """Subjects are listed by name, renamed, removed (with their templates, also from search)."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(6)
        g = make_gallery()
        g.enroll_embeddings("carol", [emb(x[0]), emb(x[1])])
        g.enroll_embeddings("ada", emb(x[2]))
        bob = g.enroll_embeddings("bob", [emb(x[3]), emb(x[4])])
        assert [s.name for s in g.subjects()] == ["ada", "bob", "carol"]
        assert [s.name for s in g.subjects(limit=1, offset=1)] == ["bob"]
        assert "ada" in g and "zed" not in g
        g.rename("ada", "adele")
        assert g.identify(emb(x[2]), k=1, threshold=-math.inf).best.subject == "adele"  # type: ignore[union-attr]
        with pytest.raises(SubjectExistsError):
            g.rename("adele", "bob")
        with pytest.raises(SubjectNotFoundError, match="zed"):
            g.rename("zed", "x")
        assert g.remove("carol") == 2
        with pytest.raises(SubjectNotFoundError):
            g.remove("carol")
        assert g.remove_templates([bob[0].id]) == 1
        st = g.stats()
        assert (st["subjects"], st["templates"], st["model"], st["backend"]) == (2, 2, TAG, g.backend)
        r = g.identify(emb(x[0]), k=5, threshold=-math.inf)
        assert {c.subject for c in r.candidates} == {"adele", "bob"}  # carol's templates are gone from the index
        _d, ids = g.search(x[3], 3)
        assert bob[0].id not in ids


def check_open_set_threshold_calibrated_for_a_stated_fpir(backend: GalleryBackend) -> None:
    """``calibrate`` sets a threshold that holds about the stated FPIR on fresh non-mated searches."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(200, seed=1)
        g = make_gallery()
        g.enroll_many([f"s{i}" for i in range(200)], x, model=TAG)
        cal = g.calibrate(unit_vectors(400, seed=2), fpir=0.05)
        assert cal.n_nonmated == 400 and cal.n_subjects == 200 and cal.measured_fpir <= 0.05
        assert g.settings.calibration["fpir"] == 0.05  # type: ignore[index]
        # fresh non-mated probes: about 5 % return a candidate; mated probes (noisy copies) are found
        nonmated = g.identify_many(unit_vectors(400, seed=3), k=3)
        fpir = np.mean([r.identified for r in nonmated])
        assert fpir <= 0.12
        noisy = x[:50] + 0.05 * unit_vectors(50, seed=4)
        mated = g.identify_many(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), k=3)
        assert all(r.best is not None and r.best.subject == f"s{i}" for i, r in enumerate(mated))
        assert all(c.score >= cal.threshold for r in mated for c in r.candidates)
        assert mated[0].threshold_source.startswith("calibrated: FPIR=0.05")


def check_verify_against_a_claimed_subject(backend: GalleryBackend) -> None:
    """``verify`` scores a probe against one subject's templates (max or mean)."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(3)
        g = make_gallery()
        g.enroll_embeddings("ada", [emb(x[0]), emb(x[1])])
        yes = g.verify(emb(x[0]), "ada", threshold=0.9)
        no = g.verify(emb(x[2]), "ada", threshold=0.9)
        assert yes.match and yes.score == pytest.approx(1.0, abs=1e-5) and yes.model == TAG
        assert not no.match and no.operating_point == "custom"
        mean = g.verify(emb(x[0]), "ada", threshold=0.9, strategy="mean")
        assert mean.score == pytest.approx((1.0 + float(x[0] @ x[1])) / 2, abs=1e-5)
        with pytest.raises(SubjectNotFoundError, match="bob"):
            g.verify(emb(x[0]), "bob", threshold=0.5)
        with pytest.raises(ConfigurationError, match="threshold"):
            g.verify(emb(x[0]), "ada")  # a synthetic model has no calibrated 1:1 operating point


def check_template_quality_filters_and_weights_identification(backend: GalleryBackend) -> None:
    """Stored template qualities come back (``template_qualities``); ``min_template_quality``
    leaves out the templates below it (those without a quality are kept) in identify and verify;
    ``"quality-mean"`` weights a subject's template scores by their qualities."""
    with backend.galleries() as make_gallery:
        e = np.eye(8, dtype=np.float32)
        q = e[0]
        g = make_gallery()
        # "blurry" matches the probe exactly with a poor template, not at all with a good one
        g.enroll_embeddings("blurry", [emb(q), emb(e[1])], qualities=[20.0, 90.0])
        g.enroll_embeddings("sharp", [emb(0.8 * e[0] + 0.6 * e[2])], qualities=[80.0])
        g.enroll_embeddings("unrated", [emb(0.6 * e[0] + 0.8 * e[3])])  # no stored quality
        stored = {t.id: t.quality for t in g.templates()}
        assert sorted(v for v in stored.values() if v is not None) == [20.0, 80.0, 90.0] and None in stored.values()
        assert g.store.template_qualities(list(stored)) == stored

        def ranked(**kw: Any) -> list[tuple[str, float]]:
            r = g.identify(emb(q), k=3, threshold=-math.inf, **kw)
            return [(c.subject, round(c.score, 4)) for c in r.candidates]

        assert ranked() == [("blurry", 1.0), ("sharp", 0.8), ("unrated", 0.6)]
        assert ranked(min_template_quality=50) == [("sharp", 0.8), ("unrated", 0.6), ("blurry", 0.0)]
        assert ranked(min_template_quality=95) == [("unrated", 0.6)]  # nothing else is good enough
        assert ranked(strategy="mean")[2] == ("blurry", 0.5)
        assert ranked(strategy="quality-mean")[2] == ("blurry", round(20 / 110, 4))  # 1·20 + 0·90 over 110
        assert ranked(strategy="mean", min_template_quality=50)[2] == ("blurry", 0.0)
        assert g.verify(emb(q), "blurry", threshold=0.5).match
        assert not g.verify(emb(q), "blurry", threshold=0.5, min_template_quality=50).match
        qm = g.verify(emb(q), "blurry", threshold=0.5, strategy="quality-mean")
        assert qm.score == pytest.approx(20 / 110, abs=1e-5)
        with pytest.raises(SubjectNotFoundError, match="quality 95"):
            g.verify(emb(q), "blurry", threshold=0.5, min_template_quality=95)
        with pytest.raises(ConfigurationError, match="min_template_quality"):
            g.identify(emb(q), min_template_quality=150)


def check_export_then_import(backend: GalleryBackend, other: GalleryBackend | None = None) -> None:
    """An export imports into a new gallery (of ``other``, when given) with everything it holds."""
    with backend.galleries() as make_gallery:
        x = unit_vectors(30)
        with make_gallery("src", strategy="mean") as g:
            g.enroll_embeddings("ada", [emb(x[0]), emb(x[1])], bboxes=[(1, 2, 3, 4), None], subject_metadata={"k": "v"})
            g.enroll_many([f"s{i}" for i in range(2, 30)], x[2:], model=TAG)
            g.calibrate(unit_vectors(40, seed=5), fpir=0.1)
            rep = g.export(make_gallery.root / "g.npz")
        assert rep["templates"] == 30 and rep["subjects"] == 29
        with (other or backend).galleries() as make_other, make_other("dst") as h:
            got = h.import_from(make_gallery.root / "g.npz")
            assert got["templates"] == 30 and len(h) == 29 and h.model == TAG
            assert h.settings.strategy == "mean" and h.settings.calibration is not None
            assert h.subject("ada").metadata == {"k": "v"}
            ada = list(h.templates("ada"))
            assert {t.bbox for t in ada} == {BBox(1, 2, 3, 4), None}
            assert h.identify(emb(x[7]), k=1, threshold=-math.inf).best.subject == "s7"  # type: ignore[union-attr]
        with pytest.raises(ConfigurationError, match=".npz"):
            g2 = make_gallery("src")
            try:
                g2.export(make_gallery.root / "g.json")
            finally:
                g2.close()


def check_empty_and_invalid_inputs(backend: GalleryBackend) -> None:
    """An empty gallery identifies nobody; empty names, no embeddings and k < 1 are refused."""
    with backend.galleries() as make_gallery:
        g = make_gallery()
        r = g.identify(emb(unit_vectors(1)[0]), k=3)
        assert r.candidates == [] and not r.identified
        with pytest.raises(ConfigurationError):
            g.enroll_embeddings("", emb(unit_vectors(1)[0]))
        with pytest.raises(ConfigurationError):
            g.enroll_embeddings("a", [])
        with pytest.raises(ConfigurationError, match="k must"):
            g.identify(emb(unit_vectors(1)[0]), k=0)


# --- running them -------------------------------------------------------------------------------

CheckFn = Callable[[GalleryBackend], None]


def gallery_checks() -> list[CheckFn]:
    """Every check, in a stable order."""
    return [
        check_enrol_then_identify_ranks_the_mate_first,
        check_search_is_faiss_style_with_minus_one_padding,
        check_max_and_mean_strategies_rank_differently,
        check_other_models_are_refused_with_a_clear_error,
        check_everything_persists_across_close_and_reopen,
        check_remove_rename_list_and_stats,
        check_open_set_threshold_calibrated_for_a_stated_fpir,
        check_verify_against_a_claimed_subject,
        check_template_quality_filters_and_weights_identification,
        check_export_then_import,
        check_empty_and_invalid_inputs,
    ]


def parametrize_with_checks(backends: Sequence[GalleryBackend]) -> Any:
    """A ``pytest.mark.parametrize`` over ``(backend, check)``: one test per check per backend,
    with ids ``"<backend>-<check>"``; a backend whose required modules are missing is skipped."""
    params = []
    for b in backends:
        missing = b.missing()
        marks = [pytest.mark.skip(reason=f"{b.name} needs {', '.join(missing)}")] if missing else []
        for check in gallery_checks():
            params.append(pytest.param(b, check, id=f"{b.name}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize(("backend", "check"), params)
