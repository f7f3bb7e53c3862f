"""The gallery API: subjects with templates, 1:N identification, 1:1 verification against a claim.

A :class:`Gallery` stores *subjects* (a unique name + free JSON metadata), each with any number
of *templates* (one embedding of one face, with the sha256 of its source image, its bbox, an
optional quality, timestamps and free JSON metadata). Every template carries the tag of the
model that made it (``model_id@model_version``); a gallery holds one model only, and
enrolling or searching with another raises :class:`~faceprint.errors.EmbeddingMismatchError`.

Searching follows faiss: :meth:`Gallery.search` returns ``(D, I)`` — scores and template ids,
``-1`` where fewer than ``k`` templates exist. :meth:`Gallery.identify` works at subject level:
a subject's score is the ``max`` or the ``mean`` of its templates' cosine similarities to the
probe, and a candidate is returned only when its score reaches the gallery's *open-set
threshold*, calibrated for a stated false-positive identification rate (FPIR) with
:meth:`Gallery.calibrate` (see :func:`~faceprint.gallery.fpir_threshold`).

A gallery is composed of a :class:`~faceprint.gallery.store.TemplateStore` (storage) and a
:class:`~faceprint.gallery.store.GalleryIndex` (search)::

    Gallery(store, index, pipeline=..., strategy=...)

``open_gallery`` builds the right pair for a location. The work is split by job:

==========================  ==================================================================
:mod:`.core`                store + index + settings, pipelines, subject management, ``search``
:mod:`.enrolment`           ``enroll``, ``enroll_images``, ``enroll_embeddings``, ``enroll_many``
:mod:`.ranking`             template hits → ranked subjects (``max`` / ``mean``)
:mod:`.calibration`         ``calibrate``, the open-set threshold, FPIR/FNIR estimators
:mod:`.identification`      ``identify``, ``identify_many``, ``verify``
:mod:`.transfer`            ``export``, ``import_from``, ``migrate``
==========================  ==================================================================
"""

from __future__ import annotations

from .identification import IdentificationMixin
from .transfer import TransferMixin

__all__ = ["Gallery"]


class Gallery(IdentificationMixin, TransferMixin):
    """A persistent 1:N gallery: a template store and a vector index. Open one with
    :func:`faceprint.gallery.open_gallery`, or compose one: ``Gallery(store, index, ...)``.

    Use it as a context manager, or call :meth:`close`. Methods are safe to call from several
    threads; for parallel searches open one gallery per thread or process — readers never
    block the writer.

    Args:
        store: the :class:`~faceprint.gallery.store.TemplateStore`.
        index: the :class:`~faceprint.gallery.store.GalleryIndex` that searches it.
        pipeline: the FacePipeline to enrol/search images with in this session; when the store
            is new, it also fixes the gallery's model and is remembered for later sessions.
        keep_source_images: (new store) keep enrolled images so :meth:`migrate` can re-embed them.
        strategy: (new store) subject score, ``"max"`` or ``"mean"`` of its templates' scores, or ``"quality-mean"``.
        index_spec: (new store) the index spec (:mod:`faceprint.gallery.spec`).
        image_dir: folder for kept source images.
    """

    def __enter__(self) -> Gallery:
        return self
