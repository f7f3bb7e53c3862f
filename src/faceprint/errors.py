"""Every exception faceprint raises, in one place.

Each class refines :class:`FaceprintError` *and* the builtin exception it is a
special case of, so ``except ValueError`` in caller code keeps working.
Messages say what went wrong and what to do next.

"No face in the image" is **not** an error: detection returns an empty list.
"""

from __future__ import annotations

__all__ = [
    "FaceprintError",
    "ImageError",
    "ImageDecodeError",
    "EmptyImageError",
    "TruncatedImageError",
    "UnsupportedImageError",
    "ImageTooLargeError",
    "ImageDimensionError",
    "ImageNotFoundError",
    "ModelError",
    "UnknownModelError",
    "ModelNotFoundError",
    "ModelChecksumError",
    "ModelFormatError",
    "ModelVersionError",
    "BackendUnavailableError",
    "BackendProtocolError",
    "EmbeddingError",
    "InvalidEmbeddingError",
    "EmbeddingMismatchError",
    "ConfigurationError",
    "NoFaceError",
    "LowQualityError",
    "DataFormatError",
    "EmbeddingCacheError",
    "ServiceError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ServiceUnavailableError",
    "ServiceTimeoutError",
    "APIKeyNotFoundError",
    "APIKeyRevokedError",
    "GalleryError",
    "SubjectNotFoundError",
    "SubjectExistsError",
    "GalleryNotFoundError",
    "GalleryExistsError",
    "CorruptStoreError",
    "ExplanationError",
    "IdenticalImagesError",
    "LayerNotFoundError",
    "ProtectionError",
    "ProtectionKeyError",
    "TemplateMismatchError",
    "KeyMismatchError",
    "TamperedTemplateError",
    "UnsafeCheckpointError",
    "ModelShapeError",
    "AttackDetectedError",
    "MorphError",
    "SameContributorError",
    "LandmarkModelError",
    "MapMismatchError",
]


class FaceprintError(Exception):
    """Root of every error faceprint raises on purpose."""


# --- image input ---------------------------------------------------------------------------


class ImageError(FaceprintError, ValueError):
    """An input image could not be turned into an RGB uint8 array."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class ImageDecodeError(ImageError):
    """The bytes are an image format we know, but decoding them failed (corrupt data)."""


class EmptyImageError(ImageError):
    """The input holds zero bytes or an array with no pixels."""


class TruncatedImageError(ImageDecodeError):
    """The image file ends before its data does (an interrupted download or copy)."""


class UnsupportedImageError(ImageError):
    """The input is not an image faceprint can read (text, PDF, an unknown format…)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """An image path does not exist (or is not a readable file)."""


class ImageDimensionError(ImageError):
    """An array input has a shape or dtype that is not an image (e.g. 4-D, empty, NaN)."""


# --- models --------------------------------------------------------------------------------


class ModelError(FaceprintError):
    """A model could not be found, verified or loaded."""


class UnknownModelError(ModelError, LookupError):
    """No model or backend is registered under that name."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        choices = ", ".join(sorted(self.known)) or "(none registered)"
        super().__init__(f"unknown {kind} {name!r}; choose one of: {choices}")

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model file is missing from its package or from the local model directory."""


class ModelChecksumError(ModelError):
    """A model file's sha256 differs from the manifest: it is corrupt or a different model."""


class ModelFormatError(ModelError, ValueError):
    """A model file is not in the format its loader expects (wrong inputs/outputs, bad bytes)."""


# presentation-attack detection (issue 11): a trainable model file of another format version
class ModelVersionError(ModelFormatError):
    """A model file was written by another version of its format; retrain or convert it."""


class BackendUnavailableError(FaceprintError, ImportError):
    """An optional backend needs a package that is not installed."""


class BackendProtocolError(FaceprintError, TypeError):
    """A registered backend (often a plug-in) built an object that does not follow its stage's protocol."""


# --- embeddings and comparison ---------------------------------------------------------------


class EmbeddingError(FaceprintError, ValueError):
    """An embedding cannot be used as given."""


class InvalidEmbeddingError(EmbeddingError):
    """An embedding has the wrong shape, is not finite (NaN/inf) or has zero norm."""


class EmbeddingMismatchError(EmbeddingError):
    """Two embeddings come from different models, model versions or dimensions."""


class NoFaceError(FaceprintError, LookupError):
    """An operation that needs exactly one face (e.g. verify) found none in an image."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no face found"


class LowQualityError(NoFaceError):
    """A face was found, but its quality is below the pipeline's ``min_quality``: a failure to
    enrol (ISO/IEC 19795-1), reported wherever "no face" is. ``quality`` and ``threshold`` say by
    how much; the message names the components that pull the score down."""

    def __init__(self, message: str, *, quality: float | None = None, threshold: float | None = None) -> None:
        self.quality = quality
        self.threshold = threshold
        super().__init__(message)


class ConfigurationError(FaceprintError, ValueError):
    """A setting or argument has an invalid value."""


# --- evaluation data --------------------------------------------------------------------------


class DataFormatError(ConfigurationError):
    """A protocol, metadata or score file is malformed; the message names the file and line."""


class EmbeddingCacheError(FaceprintError, OSError):
    """The evaluation embedding cache cannot be opened or is not a faceprint cache."""


# --- REST service (faceprint serve) ------------------------------------------------------------


class ServiceError(FaceprintError):
    """A request to the REST service is refused; ``faceprint.service.errors`` maps it to HTTP."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class AuthenticationError(ServiceError, PermissionError):
    """No API key, or one that is malformed, unknown or revoked (HTTP 401)."""


class PermissionDeniedError(ServiceError, PermissionError):
    """A valid API key whose role or gallery scope does not allow the request (HTTP 403)."""


class RateLimitError(ServiceError):
    """An API key sent more requests than its rate limit; retry after ``retry_after`` seconds (HTTP 429)."""


class RequestTooLargeError(ServiceError, ValueError):
    """A request body or uploaded file is over the service's byte limit (HTTP 413)."""


class ServiceUnavailableError(ServiceError):
    """The service is starting, shutting down or has too much queued work (HTTP 503)."""


class ServiceTimeoutError(ServiceError, TimeoutError):
    """A request took longer than the service's time limit (HTTP 504; 408 while uploading)."""


class APIKeyNotFoundError(ServiceError, LookupError):
    """No API key has that id (``faceprint keys revoke``)."""


class APIKeyRevokedError(AuthenticationError):
    """The API key was revoked (HTTP 401). Only said to a caller who sent the key's right secret."""


# --- gallery (1:N) -------------------------------------------------------------------------


class GalleryError(FaceprintError):
    """A gallery cannot be opened, created or used as asked (missing, not a gallery, newer schema…)."""


class SubjectNotFoundError(GalleryError, LookupError):
    """No subject of that name is enrolled in the gallery."""

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0]) if self.args else "subject not found"


class SubjectExistsError(GalleryError, ValueError):
    """A subject of that name already exists (e.g. the target of a rename)."""


class GalleryNotFoundError(GalleryError, LookupError):
    """No gallery of that name (the REST service's named galleries)."""

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0]) if self.args else "gallery not found"


class GalleryExistsError(GalleryError, FileExistsError):
    """A gallery of that name already exists."""


class CorruptStoreError(GalleryError, OSError):
    """A file faceprint keeps (a gallery's SQLite database or index, the service's key store) is
    damaged: truncated, overwritten or not a database at all.

    ``path`` names the file. Other galleries keep working; a broken gallery can be listed as
    broken and removed. The CLI exits with code 7 (``EXIT_CORRUPT_STORE``); the service answers
    with the problem code ``corrupt_store`` (type ``urn:faceprint:problem:corrupt_store``).
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:  # OSError would otherwise format (errno, strerror)
        return str(self.args[0]) if self.args else "corrupt store"


# --- explanations (faceprint explain) ------------------------------------------------------------


class ExplanationError(FaceprintError, ValueError):
    """Two faces cannot be explained as asked (see :mod:`faceprint.explain`)."""


class IdenticalImagesError(ExplanationError):
    """The two face chips are the same pixels: every region matches itself, so a map of where
    their similarity comes from says nothing. Compare two different photographs."""


class LayerNotFoundError(ExplanationError):
    """The embedder's model has no intermediate layer of the requested name (or exposes none),
    so a method that reads one (``xcos``) cannot run on it; the message lists the layers there are."""


# --- template protection (faceprint protect) -----------------------------------------------------


class ProtectionError(FaceprintError, ValueError):
    """Embeddings cannot be protected, or protected templates compared, as asked (see
    :mod:`faceprint.protection`)."""


class ProtectionKeyError(ProtectionError):
    """No protection secret was given, or the secret, salt or key is unusable (empty, of the wrong
    type, too short). Give a secret with ``--secret-file PATH`` or ``FACEPRINT_PROTECT_SECRET``."""


class TemplateMismatchError(ProtectionError):
    """Two sets of protected templates cannot be compared: they come from different protection
    methods, method versions or embedding dimensions, or are not protected templates at all."""


class KeyMismatchError(TemplateMismatchError):
    """Two sets of protected templates were made under different keys (their key fingerprints
    differ): a probe protected with a wrong key, or templates of two applications mixed. Scores
    across keys mean nothing, so none are given."""


class TamperedTemplateError(ProtectionError):
    """A protected template's bytes do not pass their integrity check (altered, truncated or
    from another key): it is refused rather than scored."""


# --- attack detection (faceprint pad) ------------------------------------------------------------


class UnsafeCheckpointError(ModelFormatError):
    """A model checkpoint's pickle references something other than tensor types (for example
    ``os.system``): it is refused before anything in it runs. Use the original file."""


class ModelShapeError(ModelFormatError):
    """A model file holds a tensor of the wrong shape, or lacks one, for the network it should
    describe: a different model or variant, or a damaged file."""


class AttackDetectedError(NoFaceError):
    """A policy refuses faces an attack detector scores as an attack (a presentation attack, a
    deepfake or a morph), for example at gallery enrolment with a liveness gate set."""


# --- video (faceprint.media.video) ------------------------------------------------------------

__all__ += ["VideoError", "VideoNotFoundError", "UnsupportedVideoError", "EmptyVideoError", "TruncatedVideoError"]
__all__ += ["VideoTooLongError"]


class VideoError(ImageError):
    """A video (file or camera) could not be read as a stream of frames. Exit code 3 like images."""


class VideoNotFoundError(VideoError, ImageNotFoundError):
    """The video file does not exist (or the camera index opens no device)."""


class UnsupportedVideoError(VideoError, UnsupportedImageError):
    """Not a video OpenCV can open (another kind of file), or a codec it cannot decode."""


class EmptyVideoError(VideoError):
    """The video opens but holds no frame."""


class TruncatedVideoError(VideoError):
    """Decoding stopped before the end the container announces (a truncated or damaged file).

    ``frames_read`` frames were decoded and processed (and their tracks reported) before it;
    ``frames_expected`` is the frame count in the container's header."""

    def __init__(
        self, message: str, *, source: str | None = None, frames_read: int = 0, frames_expected: int = 0
    ) -> None:
        self.frames_read = frames_read
        self.frames_expected = frames_expected
        super().__init__(message, source=source)


class VideoTooLongError(VideoError, ImageTooLargeError):
    """The video lasts longer than the allowed duration (the service's limit, or ``max_seconds``)."""


# --- morphing attacks (faceprint morph) -----------------------------------------------------------


class MorphError(FaceprintError, ValueError):
    """Two images cannot be morphed as asked (see :mod:`faceprint.attacks.morph`)."""


class SameContributorError(MorphError):
    """Both contributors of a morph are the same image: the "morph" would be that image again,
    which tests nothing. Give photographs of two different people."""


class LandmarkModelError(ModelNotFoundError):
    """The dense (68-point) landmark model a landmark-based morph needs is missing; the message
    names the file and the model's licence restriction."""


# --- cross-model embedding maps (faceprint map, issue 16) ------------------------------------------


class MapMismatchError(EmbeddingMismatchError):
    """An embedding map was fitted for other models than the embeddings or gallery it is applied to
    (model ids ``id@version`` differ): fit a map for these two models with ``faceprint map fit``."""


# --- protected galleries in the REST service (issue 14) ------------------------------------------


class ProtectedGalleryError(GalleryError):
    """The operation is not available on a protected gallery: it holds only protected templates
    (no embeddings to return, no per-template quality, no source images), so the service answers
    409 ``protected_gallery`` instead of doing it."""


class ProtectionUnavailableError(ServiceUnavailableError):
    """The server cannot open a protected gallery: it was started without the protection secret
    (``FACEPRINT_PROTECT_SECRET_FILE``), or with one that does not open that gallery (HTTP 503;
    never a score). The secret is the server's configuration, never part of a request."""


class ProtectionNotConfiguredError(ProtectedGalleryError):
    """A protected gallery was asked of a server started without a protection secret (HTTP 409
    ``protection_not_configured``): its operator starts it with ``FACEPRINT_PROTECT_SECRET_FILE``."""
