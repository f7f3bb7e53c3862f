"""One module per group of routes: health, recognition (detect/embed/verify), galleries, web page."""

from __future__ import annotations

from typing import Any

from ...errors import ConfigurationError
from ...models import OperatingPoint
from ...scoring import operating_point
from ..errors import PROBLEM_JSON
from ..schemas import Problem

__all__ = ["problems", "multipart_body", "resolve_point", "NAME_PATTERN", "OPERATING_POINT_PATTERN"]

#: Gallery and subject names in paths.
from ...gallery.names import SUBJECT_NAME_PATTERN as NAME_PATTERN  # noqa: E402  (one rule, shared with the CLI)

OPERATING_POINT_PATTERN = r"^(eer|fmr=[0-9.eE+-]{1,12})$"

_DESCRIPTIONS = {
    400: "Bad request (malformed body or invalid argument)",
    401: "Missing, unknown or revoked API key",
    403: "The API key's role or gallery scope does not allow this",
    404: "No such gallery or subject",
    408: "The upload arrived too slowly",
    409: "Conflict (already exists, or templates of another model)",
    413: "Request, image bytes or image pixels over the limit",
    415: "Not multipart/form-data, or a file that is not an image",
    422: "Invalid request, undecodable image, or no face",
    429: "Rate limit or failed-authentication limit reached (see Retry-After)",
    500: "Server error; code corrupt_store: the gallery's data is damaged (an admin can delete it)",
    503: "Models loading, shutting down or overloaded (see Retry-After)",
    504: "Inference took too long",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all ``application/problem+json``."""
    return {
        s: {"model": Problem, "description": _DESCRIPTIONS.get(s, "Error"), "content": {PROBLEM_JSON: {}}}
        for s in statuses
    }


AUTH_ERRORS = (401, 403, 429)
UPLOAD_ERRORS = (400, 408, 413, 415, 422, 503, 504)


def multipart_body(files: dict[str, str], *, required: list[str], array: set[str] | None = None) -> dict[str, Any]:
    """``openapi_extra`` describing a multipart/form-data body of image files (read by ``read_form``)."""
    array = array or set()
    props: dict[str, Any] = {}
    for name, desc in files.items():
        item = {"type": "string", "format": "binary"}
        props[name] = (
            {"type": "array", "items": item, "description": desc} if name in array else {**item, "description": desc}
        )
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": props, "required": required}}
            },
        }
    }


def resolve_point(model_id: str, name: str, threshold: float | None) -> OperatingPoint:
    """The named calibrated operating point of a model, or a custom threshold."""
    if threshold is not None:
        return OperatingPoint("custom", float(threshold), float("nan"), float("nan"), "user")
    try:
        return operating_point(model_id, name)
    except ConfigurationError:
        raise
    except LookupError as exc:  # a model without a manifest entry
        raise ConfigurationError(f"model {model_id!r} has no calibrated operating points; pass a threshold") from exc
