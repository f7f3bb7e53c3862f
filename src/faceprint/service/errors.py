"""Errors as ``application/problem+json`` (RFC 9457), with a stable ``code`` per error class.

Every response with status ≥ 400 has the body::

    {"type": "urn:faceprint:problem:no_face", "title": "No face found", "status": 422,
     "detail": "no face found in 'image_b'; ...", "code": "no_face",
     "instance": "/v1/verify", "request_id": "3f2a..."}

``code`` comes from the :mod:`faceprint.errors` class (:data:`ERROR_CODES`; a class not in the
table gets its snake-cased name without ``Error``) or, for plain HTTP conditions, from the
status (:data:`HTTP_CODES`). Clients branch on ``code``, never on ``detail``. Unexpected
exceptions answer 500 with a generic body; the traceback goes to the server log only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as E

__all__ = [
    "PROBLEM_JSON",
    "ProblemSpec",
    "ERROR_CODES",
    "HTTP_CODES",
    "problem_spec",
    "problem_body",
    "problem_response",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:faceprint:problem:"


@dataclass(frozen=True, slots=True)
class ProblemSpec:
    status: int
    code: str
    title: str


#: faceprint error class → (HTTP status, code, title). Looked up along the class's MRO, so a
#: subclass without its own entry answers like its parent (but keeps its own code).
ERROR_CODES: dict[type[BaseException], ProblemSpec] = {
    # images
    E.EmptyImageError: ProblemSpec(422, "empty_image", "Empty image"),
    E.TruncatedImageError: ProblemSpec(422, "truncated_image", "Truncated image"),
    E.ImageDecodeError: ProblemSpec(422, "image_decode_error", "Image cannot be decoded"),
    E.UnsupportedImageError: ProblemSpec(415, "unsupported_image", "Not a supported image"),
    E.ImageTooLargeError: ProblemSpec(413, "image_too_large", "Image too large"),
    E.ImageDimensionError: ProblemSpec(422, "image_dimension_error", "Invalid image dimensions"),
    E.ImageNotFoundError: ProblemSpec(400, "image_not_found", "Image not found"),
    E.ImageError: ProblemSpec(422, "image_error", "Invalid image"),
    E.NoFaceError: ProblemSpec(422, "no_face", "No face found"),
    # embeddings
    E.EmbeddingMismatchError: ProblemSpec(409, "embedding_mismatch", "Embeddings of different models"),
    E.InvalidEmbeddingError: ProblemSpec(422, "invalid_embedding", "Invalid embedding"),
    E.EmbeddingError: ProblemSpec(422, "embedding_error", "Embedding error"),
    # models and settings
    E.UnknownModelError: ProblemSpec(400, "unknown_model", "Unknown model"),
    E.ModelError: ProblemSpec(503, "model_error", "Model unavailable"),
    E.BackendUnavailableError: ProblemSpec(503, "backend_unavailable", "Backend unavailable"),
    E.ConfigurationError: ProblemSpec(400, "invalid_argument", "Invalid argument"),
    # the service itself
    E.AuthenticationError: ProblemSpec(401, "unauthorized", "Missing or invalid API key"),
    E.PermissionDeniedError: ProblemSpec(403, "forbidden", "Not allowed for this API key"),
    E.RateLimitError: ProblemSpec(429, "rate_limited", "Too many requests"),
    E.RequestTooLargeError: ProblemSpec(413, "payload_too_large", "Request too large"),
    E.ServiceUnavailableError: ProblemSpec(503, "unavailable", "Service unavailable"),
    E.ServiceTimeoutError: ProblemSpec(504, "timeout", "Request timed out"),
    E.APIKeyNotFoundError: ProblemSpec(404, "api_key_not_found", "API key not found"),
    # galleries
    E.GalleryNotFoundError: ProblemSpec(404, "gallery_not_found", "Gallery not found"),
    E.GalleryExistsError: ProblemSpec(409, "gallery_exists", "Gallery already exists"),
    E.SubjectNotFoundError: ProblemSpec(404, "subject_not_found", "Subject not found"),
    E.SubjectExistsError: ProblemSpec(409, "subject_exists", "Subject already exists"),
    E.GalleryError: ProblemSpec(500, "gallery_error", "Gallery error"),
}

#: Plain HTTP conditions (routing, request parsing) → code.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Missing or invalid API key"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    408: ("upload_timeout", "Upload too slow"),
    409: ("conflict", "Conflict"),
    411: ("length_required", "Length required"),
    413: ("payload_too_large", "Request too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Invalid request"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
    504: ("timeout", "Request timed out"),
}


def _snake(name: str) -> str:
    if name.endswith("Error") and name != "Error":
        name = name[: -len("Error")]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _fallback(exc: BaseException) -> ProblemSpec:
    """Status for a faceprint error class with no table entry, from the builtin it refines."""
    code = _snake(type(exc).__name__)
    title = re.sub(r"_", " ", code).capitalize()
    if isinstance(exc, FileExistsError):
        return ProblemSpec(409, code, title)
    if isinstance(exc, (LookupError, FileNotFoundError)):
        return ProblemSpec(404, code, title)
    if isinstance(exc, PermissionError):
        return ProblemSpec(403, code, title)
    if isinstance(exc, TimeoutError):
        return ProblemSpec(504, code, title)
    if isinstance(exc, OSError):
        return ProblemSpec(500, code, title)
    return ProblemSpec(422, code, title)


def problem_spec(exc: BaseException) -> ProblemSpec:
    """(status, code, title) of a faceprint error; the code is stable per class.

    A class without its own table entry answers with the status and title of its nearest
    listed parent (or, failing that, of the builtin it refines) and its own snake-cased code.
    """
    cls = type(exc)
    spec = ERROR_CODES.get(cls)
    if spec is not None:
        return spec
    for parent in cls.__mro__[1:]:
        spec = ERROR_CODES.get(parent)
        if spec is not None:
            return ProblemSpec(spec.status, _snake(cls.__name__), spec.title)
    return _fallback(exc)


def _detail(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, E.ImageError) and exc.source and text.startswith(exc.source + ": "):
        source = exc.source
        text = text[len(source) + 2 :]
        if not source.startswith("<"):
            text = f"{source}: {text}"
    return text


def problem_body(status: int, code: str, title: str, detail: str, request: Request | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None) or request.scope.get("faceprint.request_id")
        if rid:
            body["request_id"] = rid
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(status, code, title, detail, request)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def error_headers(exc: BaseException, status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    retry = getattr(exc, "retry_after", None)
    if retry is not None and status in (429, 503):
        headers["Retry-After"] = str(max(1, int(retry)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="faceprint"'
    return headers


def faceprint_error_response(exc: E.FaceprintError, request: Request | None) -> JSONResponse:
    spec = problem_spec(exc)
    detail = _detail(exc)
    if spec.status >= 500 and not isinstance(exc, E.ServiceError):
        # server-side trouble (models, gallery storage): its message may name server paths
        log.error("%s in %s: %s", type(exc).__name__, request.url.path if request else "-", exc)
        detail = "the server could not complete the request; the error was logged"
    return problem_response(
        spec.status, spec.code, spec.title, detail, request=request, headers=error_headers(exc, spec.status)
    )


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be large or sensitive)."""
    out = []
    for e in errors or []:
        out.append(
            {
                "loc": [str(x) for x in e.get("loc", ())],
                "msg": str(e.get("msg", ""))[:300],
                "type": str(e.get("type", "")),
            }
        )
    return out[:20]


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through problem+json; register on the app before serving."""

    @app.exception_handler(E.FaceprintError)
    async def _faceprint(request: Request, exc: E.FaceprintError) -> JSONResponse:
        return faceprint_error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = _clean_validation_errors(exc.errors())
        first = errs[0] if errs else None
        detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first else "the request is not valid"
        return problem_response(
            422, "validation_error", "Invalid request", detail, request=request, extra={"errors": errs}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="faceprint"')
        return problem_response(exc.status_code, code, title, detail, request=request, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request.scope.get("faceprint.request_id", "-")
        log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc)
        return problem_response(
            500,
            "internal_error",
            "Internal server error",
            "the server could not complete the request; the error was logged",
            request=request,
        )
