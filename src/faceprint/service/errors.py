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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as E
from .problems import ERROR_CODES, ProblemSpec, problem_spec

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
    said_safely = isinstance(exc, E.ServiceError) or (isinstance(exc, E.CorruptStoreError) and exc.path is None)
    if spec.status >= 500 and not said_safely:
        # server-side trouble (models, gallery storage): its message may name server paths
        # (a damaged gallery is re-raised by the gallery manager with its name only, and said)
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
