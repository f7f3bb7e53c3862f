"""What a gallery is made of: a template store (storage only) and a vector index (search only).

:class:`~faceprint.gallery.Gallery` composes one of each. A backend implements
:class:`TemplateStore` — subjects and templates, written in transactions — and, unless its storage
searches by itself (Milvus), reuses one of faceprint's indexes, which follow the store through the
:class:`Change` each write returns. :func:`faceprint.testing.gallery.parametrize_with_checks` runs
the conformance checks every store must pass.

Template ids are positive integers chosen by the store; ``-1`` means "no template" in search
results, as in faiss.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .values import GallerySettings, NewTemplate, Subject, Template

__all__ = ["Change", "FeedState", "TemplateStore", "GalleryIndex", "ChangeFeed", "FeedReader"]


def _no_ids() -> npt.NDArray[np.int64]:
    return np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class Change:
    """What one committed write did, so that an index can follow the store.

    ``base``/``generation``: the store's change counter before and after the write (None for
    stores that keep none: the index then rebuilds when it cannot tell). ``epoch`` changes when
    every vector was replaced (a migration). ``orphaned_sources``: stored source images that no
    template refers to any more (the gallery deletes their files).
    """

    added_ids: npt.NDArray[np.int64] = field(default_factory=_no_ids)
    added_vectors: npt.NDArray[np.float32] | None = None
    added_subjects: npt.NDArray[np.int64] | None = None  # the subject id of each added template
    removed_ids: npt.NDArray[np.int64] = field(default_factory=_no_ids)
    base: int | None = None
    generation: int | None = None
    epoch: int | None = None
    orphaned_sources: tuple[str, ...] = ()


@runtime_checkable
class TemplateStore(Protocol):
    """Durable storage of one gallery's settings, subjects and templates (no search).

    Every write is one transaction: it happens whole or not at all. Names are kept verbatim.
    A store is safe to call from several threads (it serialises its own connection).
    """

    #: ``"sqlite"``, ``"milvus"``, …
    backend: str
    #: where it lives (a folder, a file, a URI)
    location: str
    #: True when this object created the store (it then holds default settings)
    created: bool

    def read_settings(self) -> GallerySettings: ...

    def write_settings(self, settings: GallerySettings) -> None: ...

    def version(self) -> int:
        """A number that changes when *another* connection or process has written (cheap)."""
        ...

    def insert(
        self, rows: Sequence[NewTemplate], subject_metadata: Mapping[str, Mapping[str, Any]], *, model: str, dim: int
    ) -> Change:
        """Add ``rows`` and create missing subjects (also the names in ``subject_metadata``, whose
        metadata is merged in), in one transaction. The first insert fixes the stored ``model`` and
        ``dim``; rows of another model raise EmbeddingMismatchError and write nothing."""
        ...

    def delete(self, *, subject: str | None = None, template_ids: Sequence[int] | None = None) -> Change:
        """Delete a subject with its templates (SubjectNotFoundError if unknown), or some templates."""
        ...

    def rename(self, old: str, new: str) -> None:
        """SubjectNotFoundError if ``old`` is unknown, SubjectExistsError if ``new`` exists."""
        ...

    def replace_vectors(
        self, vectors: Mapping[int, npt.NDArray[np.float32]], drop: Sequence[int], settings: GallerySettings
    ) -> Change:
        """Migration: set these templates' vectors, delete ``drop`` and store ``settings``, as one change."""
        ...

    def counts(self, *, exact: bool = True) -> tuple[int, int]:
        """(subjects, templates); ``exact=False`` allows a slightly stale answer when counting is costly."""
        ...

    def subject(self, name: str) -> Subject | None: ...

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        """Subjects sorted by name: all, or ``limit`` of them after skipping ``offset``."""
        ...

    def templates(self, subject: str | None = None, *, with_vectors: bool = False) -> Iterator[Template]:
        """Templates of one subject (SubjectNotFoundError if unknown) or of all (streamed), by id."""
        ...

    def template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """template id → (subject id, subject name), for the ids that exist."""
        ...

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        """subject id → name, for the ids that exist."""
        ...

    def template_qualities(self, template_ids: Sequence[int]) -> dict[int, float | None]:
        """template id → its stored quality (None when it has none), for the ids that exist.
        Read after a search, to filter or weight its hits by quality."""
        ...

    def subject_vectors(
        self, subject_ids: Sequence[int]
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """subject id → (template ids, float32 (m, D) vectors)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Backend figures for :meth:`Gallery.stats` (e.g. ``{"disk_bytes": {...}}``)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class GalleryIndex(Protocol):
    """The search side: faiss's ``search(x, k) -> (D, I)`` over the store's templates."""

    def search(self, x: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """``x``: L2-normalised float32 (N, D). Returns cosine scores float32 (N, k), best first, and
        template ids int64 (N, k); ``-1`` ids and ``-inf`` scores where fewer than ``k`` exist."""
        ...

    def owners(self, template_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The subject id of each template id, ``-1`` where the index does not know it (the gallery
        then asks the store): lets a search be ranked by subject without a database read."""
        ...

    def update(self, change: Change) -> None:
        """Follow a write this process has just committed."""
        ...

    def refresh(self, *, force: bool = False) -> None:
        """Catch up with writes of other processes (``force``: also re-read the settings)."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FeedState:
    """Where a store's change log stands: ``generation`` counts writes; ``count`` and ``id_sum``
    (templates, and the sum of their ids) let an index check it holds exactly the store's rows."""

    generation: int
    epoch: int
    count: int
    id_sum: int


class FeedReader(Protocol):
    """A consistent read snapshot of a store, for an index to catch up or rebuild from."""

    def state(self) -> FeedState: ...

    def settings(self) -> GallerySettings: ...

    def removed_since(self, generation: int) -> list[tuple[int, int]]:
        """``(template id, generation that added it)`` of templates removed after ``generation``."""
        ...

    def added_since(
        self, generation: int
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """Chunks of ``(ids, subject ids, vectors)`` of the templates added after ``generation``
        (all: ``-1``), by id."""
        ...

    def owners(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(template ids, subject ids)`` of every template."""
        ...

    def sample(self, n: int, seed: int) -> npt.NDArray[np.float32]:
        """``n`` distinct template vectors drawn at random (for training an index)."""
        ...


class ChangeFeed(Protocol):
    """A store that logs its writes by generation, so an index can follow it across processes."""

    location: str

    def version(self) -> int: ...

    def snapshot(self, *, own_connection: bool = False) -> AbstractContextManager[FeedReader]:
        """A read snapshot; ``own_connection`` for a reader in another thread that must not block writers."""
        ...

    def rows_upto(
        self, generation: int
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """Chunks of ``(ids, subject ids, vectors)`` of the templates added up to ``generation``, by
        id, each chunk read in a short transaction of its own (a long build must not hold a
        snapshot: SQLite could not checkpoint meanwhile). Templates removed while it reads may
        be missing."""
        ...

    def vectors(self, template_ids: Sequence[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``(ids, float32 vectors)`` of the templates among ``template_ids`` that exist (to re-score hits exactly)."""
        ...
