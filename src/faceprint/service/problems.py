"""A stable error code (and HTTP status) per :mod:`faceprint.errors` class, without any web framework.

The REST service answers ``application/problem+json`` with these codes
(:mod:`faceprint.service.errors`), and the CLI prints the same codes in its ``--json`` error
objects, so a script sees one vocabulary whichever way it calls faceprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import errors as E

__all__ = ["ProblemSpec", "ERROR_CODES", "problem_spec"]


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
    E.APIKeyRevokedError: ProblemSpec(401, "api_key_revoked", "API key revoked"),
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
    E.CorruptStoreError: ProblemSpec(500, "corrupt_store", "Damaged data file"),
    E.ProtectedGalleryError: ProblemSpec(409, "protected_gallery", "Not available on a protected gallery"),
    E.GalleryError: ProblemSpec(500, "gallery_error", "Gallery error"),
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
