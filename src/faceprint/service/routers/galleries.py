"""Galleries (admin), subjects and enrolment (enroll), identification and verification against a
subject (recognize): ``/v1/galleries/...``. Every route is scoped to its ``{gallery}``.

Enrolment runs inference in the pool, then writes the templates in one transaction; the whole
enrolment is shielded so a client that goes away, or a shutdown, never leaves it half done, and
shutdown waits for it. Enrolments, deletions and searches (identify, verify) are written to the
audit log. Keys below admin cannot loosen the search thresholds (see ``identify``).

A gallery created with ``protect`` (biohash, iom, ckks) holds only protected templates under a key
derived from the server's protection secret; the same routes work on it, and nothing returns a
template (see :mod:`faceprint.service.galleries`).
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, status

from ...errors import FaceprintError, ServiceUnavailableError
from .. import jobs
from ..auth import GALLERY_NAME_RE, APIKey, Role
from ..deps import ServiceState, audit, check_access, get_state, require, upload_form
from ..galleries import GalleryManager, embedder_info
from ..problems import problem_spec
from ..schemas import (
    Candidate,
    DecisionOut,
    Deleted,
    EnrolFace,
    EnrolResponse,
    FaceOut,
    GalleryCreate,
    GalleryList,
    GalleryOut,
    IdentifyResponse,
    SubjectList,
    SubjectOut,
    SubjectVerifyResponse,
)
from ..settings import ServiceSettings
from ..uploads import check_image
from . import AUTH_ERRORS, NAME_PATTERN, UPLOAD_ERRORS, multipart_body, problems
from .recognition import SelectOne, ThresholdQ

router = APIRouter(prefix="/v1/galleries", tags=["galleries"])

GalleryName = Annotated[str, Path(pattern=GALLERY_NAME_RE.pattern, description="gallery name")]
SubjectName = Annotated[str, Path(pattern=NAME_PATTERN, description="subject id")]
AnyKey = Annotated[APIKey, Depends(require(Role.RECOGNIZE))]
RecognizeIn = Annotated[APIKey, Depends(require(Role.RECOGNIZE, gallery_scoped=True))]
EnrollIn = Annotated[APIKey, Depends(require(Role.ENROLL, gallery_scoped=True))]
AdminIn = Annotated[APIKey, Depends(require(Role.ADMIN, gallery_scoped=True))]

GALLERY_ERRORS = (*AUTH_ERRORS, 404, 500)

#: Most candidates a key below admin may ask ``identify`` for (admins: 100).
MAX_TOP_K = 10


def open_store(settings: ServiceSettings) -> GalleryManager:
    return GalleryManager(settings)


def close_store(store: GalleryManager) -> None:
    store.close()


def _galleries(state: ServiceState) -> GalleryManager:
    if state.galleries is None:
        raise ServiceUnavailableError("the galleries are not available on this server (see its log)", retry_after=30)
    return state.galleries  # type: ignore[no-any-return]


async def _audit(
    request: Request, action: str, key: APIKey, gallery: str, subject: str | None = None, **extra: Any
) -> None:
    await audit(request, action, key_id=key.id, gallery=gallery, subject=subject, role=key.role.value, **extra)


# --- galleries -------------------------------------------------------------------------------


async def _probe_upload(request: Request, gallery: str) -> tuple[ServiceState, GalleryManager, bytes]:
    """(state, gallery store, probe image bytes): a 404 for an unknown gallery before the upload
    is read, then one checked image from the form field ``image``."""
    state = get_state(request)
    store = _galleries(state)
    if not await state.read(lambda: store.exists(gallery)):
        store.get(gallery)  # raises the 404
    form = await upload_form(request, max_files=1)
    data = form.file("image")
    check_image(data, "image", max_bytes=state.settings.max_image_bytes)
    return state, store, data


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=GalleryOut,
    summary="Create a gallery (admin)",
    description="With `protect` (biohash, iom or ckks) the gallery stores only protected templates, under a "
    "key derived from the server's protection secret (FACEPRINT_PROTECT_SECRET_FILE; 503 "
    "`protection_unavailable` without one). It cannot keep source images. A ckks gallery is searched by a "
    "linear encrypted scan (about 25-30 ms per template) and holds at most FACEPRINT_CKKS_MAX_TEMPLATES.",
    responses=problems(*AUTH_ERRORS, 409, 422, 503),
)
async def create_gallery(
    request: Request, body: Annotated[GalleryCreate, Body()], key: Annotated[APIKey, Depends(require(Role.ADMIN))]
) -> GalleryOut:
    await check_access(request, key, Role.ADMIN, body.name)
    state = get_state(request)
    store = _galleries(state)
    protect = body.protect
    if protect is not None:
        if body.keep_source_images:
            raise HTTPException(422, "a protected gallery made by the service keeps no source images")
        pool = state.require_pool()
        model = await pool.run("describe_embedder", embedder_info, owner=key.id)

        def create() -> dict[str, Any]:
            store.create_protected(body.name, protect, model)
            return store.describe(body.name)

    else:

        def create() -> dict[str, Any]:
            store.create(body.name, keep_source_images=body.keep_source_images)
            return store.describe(body.name)

    out = await state.write(create)
    await _audit(request, "gallery_create", key, body.name)
    return GalleryOut(**out)


@router.get(
    "",
    response_model=GalleryList,
    summary="List the galleries this key may use",
    description="A gallery whose data is damaged is listed with `status: damaged` and a `problem`; "
    "the others keep working, and an admin can delete the damaged one.",
    responses=problems(*AUTH_ERRORS, 503),
)
async def list_galleries(request: Request, key: AnyKey) -> GalleryList:
    state = get_state(request)
    store = _galleries(state)

    def listing() -> list[dict[str, Any]]:
        return store.listing([n for n in store.names() if key.can_access(n)])

    return GalleryList(galleries=[GalleryOut(**d) for d in await state.read(listing)])


@router.get(
    "/{gallery}", response_model=GalleryOut, summary="Describe a gallery", responses=problems(*GALLERY_ERRORS, 503)
)
async def get_gallery(request: Request, gallery: GalleryName, key: RecognizeIn) -> GalleryOut:
    state = get_state(request)
    store = _galleries(state)
    return GalleryOut(**await state.read(lambda: store.describe(gallery)))


@router.delete(
    "/{gallery}",
    response_model=Deleted,
    summary="Delete a gallery with all its subjects and templates (admin)",
    description="A damaged gallery is deleted without being opened (`templates` is then null).",
    responses=problems(*GALLERY_ERRORS, 503),
)
async def delete_gallery(request: Request, gallery: GalleryName, key: AdminIn) -> Deleted:
    state = get_state(request)
    store = _galleries(state)
    n = await state.write(lambda: store.delete(gallery))
    await _audit(request, "gallery_delete", key, gallery, templates=n, reason=None if n is not None else "damaged")
    return Deleted(deleted=gallery, templates=n)


# --- subjects --------------------------------------------------------------------------------


def _subject_out(s: Any) -> SubjectOut:
    d = s.to_dict()
    return SubjectOut(id=s.name, templates=s.n_templates, created_at=d.get("created"), updated_at=d.get("updated"))


@router.get(
    "/{gallery}/subjects",
    response_model=SubjectList,
    summary="List enrolled subjects (enroll)",
    responses=problems(*GALLERY_ERRORS, 422, 503),
)
async def list_subjects(
    request: Request,
    gallery: GalleryName,
    key: EnrollIn,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubjectList:
    state = get_state(request)
    store = _galleries(state)
    page, total = await state.read(lambda: store.subjects(gallery, limit=limit, offset=offset))
    return SubjectList(gallery=gallery, subjects=[_subject_out(s) for s in page], total=total)


@router.get(
    "/{gallery}/subjects/{subject}",
    response_model=SubjectOut,
    summary="Describe a subject (enroll)",
    responses=problems(*GALLERY_ERRORS, 503),
)
async def get_subject(request: Request, gallery: GalleryName, subject: SubjectName, key: EnrollIn) -> SubjectOut:
    state = get_state(request)
    store = _galleries(state)
    return _subject_out(await state.read(lambda: store.subject(gallery, subject)))


@router.post(
    "/{gallery}/subjects/{subject}/templates",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrolResponse,
    summary="Enrol photos of a subject (created if new); one template per photo (enroll)",
    description="The main (largest) face of every photo becomes a template. All or nothing: if a photo "
    "has no face or cannot be read, nothing is enrolled. Photos are not stored unless the gallery keeps "
    "source images.\n\nWhen the server runs a quality assessor (FACEPRINT_QUALITY), each template stores its "
    "face's quality, and with FACEPRINT_MIN_QUALITY a photo whose face is below it is refused "
    "(422 `low_quality`, naming the weak components): a failure to enrol, nothing is enrolled.",
    openapi_extra=multipart_body(
        {"images": "one or more photos of the subject"}, required=["images"], array={"images"}
    ),
    responses=problems(*GALLERY_ERRORS, *UPLOAD_ERRORS, 409),
)
async def enrol(
    request: Request, gallery: GalleryName, subject: SubjectName, key: EnrollIn, select: SelectOne = "largest"
) -> EnrolResponse:
    state = get_state(request)
    s = state.settings
    store = _galleries(state)
    if not await state.read(lambda: store.exists(gallery)):
        store.get(gallery)  # raises the 404 before the upload is read
    form = await upload_form(request, max_files=s.max_images_per_request)
    images = form.files.get("images") or form.files.get("image") or []
    if not images:
        raise HTTPException(422, "send at least one photo in the form field 'images'")
    for i, data in enumerate(images):
        check_image(data, f"images[{i}]", max_bytes=s.max_image_bytes)
    pool = state.require_pool()
    keep = await state.read(lambda: store.keeps_source_images(gallery))

    async def run() -> EnrolResponse:
        analysed = await pool.run("enrol", jobs.enrol_faces, images, select, s.max_pixels, owner=key.id)
        faces = [f for f, _, _ in analysed]
        embeddings = [jobs.embedding_of(f) for f in faces]
        if keep:  # the gallery stores the photos itself, with the faces the worker found
            templates = await state.read(lambda: store.enroll_images(gallery, subject, images, faces))
        else:
            templates = await state.read(
                lambda: store.enroll(
                    gallery,
                    subject,
                    embeddings,
                    bboxes=[f.detection.bbox for f in faces],
                    image_sha256=[hashlib.sha256(d).hexdigest() for d in images],
                    qualities=[None if f.quality is None else f.quality.quality for f in faces],
                )
            )
        now = await state.read(lambda: store.subject(gallery, subject))
        out = [
            EnrolFace(**FaceOut.fields_of(f), image=i, image_width=w, image_height=h, template_id=t.id)
            for i, ((f, w, h), t) in enumerate(zip(analysed, templates, strict=True))
        ]
        return EnrolResponse(
            gallery=gallery, subject=subject, added=len(templates), templates=now.n_templates, faces=out
        )

    try:
        out = await state.guarded_write(run())
    except FaceprintError as exc:
        reason = problem_spec(exc).code
        await _audit(request, "enrol", key, gallery, subject, outcome="failed", images=len(images), reason=reason)
        raise
    await _audit(request, "enrol", key, gallery, subject, images=len(images), templates=out.added)
    return out


@router.delete(
    "/{gallery}/subjects/{subject}",
    response_model=Deleted,
    summary="Remove a subject and all its templates (enroll)",
    responses=problems(*GALLERY_ERRORS, 503),
)
async def delete_subject(request: Request, gallery: GalleryName, subject: SubjectName, key: EnrollIn) -> Deleted:
    state = get_state(request)
    store = _galleries(state)
    n = await state.write(lambda: store.remove_subject(gallery, subject))
    await _audit(request, "subject_delete", key, gallery, subject, templates=n)
    return Deleted(deleted=subject, templates=n)


# --- search ----------------------------------------------------------------------------------


async def _search(request: Request, key: APIKey, action: str, gallery: str, claimed: str | None, work: Any) -> Any:
    """Await a search and write its audit event (who, which gallery, outcome; never the photo)."""
    try:
        out = await work
    except FaceprintError as exc:
        reason = problem_spec(exc).code
        await _audit(request, action, key, gallery, claimed, outcome="failed", reason=reason)
        raise
    if isinstance(out, IdentifyResponse):
        outcome = "identified" if out.identified else "not_identified"
        await _audit(request, action, key, gallery, out.identified, outcome=outcome, candidates=len(out.candidates))
    else:
        await _audit(request, action, key, gallery, claimed, outcome="match" if out.match else "no_match")
    return out


@router.post(
    "/{gallery}/identify",
    response_model=IdentifyResponse,
    summary="Who is this? Top-k subjects above the open-set threshold (1:N)",
    description="The threshold is the gallery's calibrated open-set threshold (or, if it has none, the "
    "model's 1:1 threshold at FMR=1e-3) unless `threshold` is given. An empty candidate list means "
    "*not enrolled*.\n\n"
    f"**Against enumeration**: for keys below admin, `threshold` can only raise that threshold (a lower "
    f"value is ignored and `threshold_source` says so), and `top_k` is at most {MAX_TOP_K}. Otherwise "
    "`threshold=-1&top_k=100` would list every enrolled name to a key that may not list subjects.",
    openapi_extra=multipart_body({"image": "the probe photo"}, required=["image"]),
    responses=problems(*GALLERY_ERRORS, *UPLOAD_ERRORS, 409),
)
async def identify(
    request: Request,
    gallery: GalleryName,
    key: RecognizeIn,
    top_k: Annotated[int, Query(ge=1, le=100, description="most candidates to return")] = 5,
    threshold: ThresholdQ = None,
    select: SelectOne = "largest",
    min_template_quality: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=100.0,
            description="leave out templates whose stored quality is below this (0-100); "
            "templates enrolled without a quality are kept",
        ),
    ] = None,
) -> IdentifyResponse:
    state, store, data = await _probe_upload(request, gallery)
    s = state.settings
    pool = state.require_pool()
    admin = key.allows(Role.ADMIN)
    k = top_k if admin else min(top_k, MAX_TOP_K)

    async def work() -> IdentifyResponse:
        face, w, h = await pool.run("identify", jobs.probe, data, "image", select, s.max_pixels, owner=key.id)
        emb = jobs.embedding_of(face)
        r = await state.read(
            lambda: store.identify(
                gallery, emb, k, threshold, floor=not admin, min_template_quality=min_template_quality
            )
        )
        best = r.best
        return IdentifyResponse(
            gallery=gallery,
            identified=best.subject if best is not None else None,
            candidates=[Candidate(subject=c.subject, score=round(c.score, 6), rank=c.rank) for c in r.candidates],
            threshold=round(r.threshold, 6) if math.isfinite(r.threshold) else None,
            threshold_source=r.threshold_source,
            model=r.model or emb.model,
            face=FaceOut.from_face(face),
            width=w,
            height=h,
            flags=jobs.quality_flags(pool.min_quality, image=face),
        )

    return await _search(request, key, "identify", gallery, None, work())  # type: ignore[no-any-return]


@router.post(
    "/{gallery}/subjects/{subject}/verify",
    response_model=SubjectVerifyResponse,
    summary="Is this the enrolled subject? (1:1 against a claimed identity)",
    description="For keys below admin, `threshold` can only raise the model's calibrated threshold.",
    openapi_extra=multipart_body({"image": "the probe photo"}, required=["image"]),
    responses=problems(*GALLERY_ERRORS, *UPLOAD_ERRORS, 409),
)
async def verify_subject(
    request: Request,
    gallery: GalleryName,
    subject: SubjectName,
    key: RecognizeIn,
    threshold: ThresholdQ = None,
    select: SelectOne = "largest",
) -> SubjectVerifyResponse:
    state, store, data = await _probe_upload(request, gallery)
    s = state.settings
    pool = state.require_pool()
    floor = not key.allows(Role.ADMIN)

    async def work() -> SubjectVerifyResponse:
        face, w, h = await pool.run("verify_subject", jobs.probe, data, "image", select, s.max_pixels, owner=key.id)
        emb = jobs.embedding_of(face)
        d = await state.read(lambda: store.verify(gallery, subject, emb, threshold, floor=floor))
        return SubjectVerifyResponse(
            **DecisionOut.fields_from(d),
            gallery=gallery,
            subject=subject,
            face=FaceOut.from_face(face),
            width=w,
            height=h,
            flags=jobs.quality_flags(pool.min_quality, image=face),
        )

    return await _search(request, key, "verify", gallery, subject, work())  # type: ignore[no-any-return]
