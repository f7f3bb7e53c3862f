"""Every setting of the REST service in one frozen dataclass, safe by default.

Settings are explicit constructor keywords; :meth:`ServiceSettings.from_env` reads the
``FACEPRINT_*`` environment variables for deployments. Nothing here loads a model.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER

__all__ = [
    "ServiceSettings",
    "default_data_dir",
    "ensure_private_dir",
    "load_template_key",
    "load_protect_secret",
    "TEMPLATE_KEY_ENV",
    "PROTECT_SECRET_ENV",
]

#: Environment variable holding the AES-256-GCM key for templates at rest (base64 or hex, 32 bytes).
TEMPLATE_KEY_ENV = "FACEPRINT_TEMPLATE_KEY"
#: Environment variable holding the secret of protected galleries (``…_FILE``: a 0600 file holding it).
PROTECT_SECRET_ENV = "FACEPRINT_PROTECT_SECRET"


def default_data_dir() -> Path:
    """``$FACEPRINT_DATA_DIR``, else ``$XDG_DATA_HOME/faceprint`` (``~/.local/share/faceprint``)."""
    env = os.environ.get("FACEPRINT_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "faceprint"


def ensure_private_dir(path: Path, what: str = "data folder") -> Path:
    """Create ``path`` (and its parents) as a folder only its owner can read (0700), or check that
    it is one; :class:`ConfigurationError` with one clear line when it is a file or cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"the {what} {path} is a file, not a folder: choose another path (--data-dir)")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (FileExistsError, NotADirectoryError):
        raise ConfigurationError(
            f"cannot create the {what} {path}: a part of that path is a file (--data-dir)"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    return path


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Configuration of one ``faceprint serve`` process.

    Args:
        data_dir: API keys (``keys.sqlite``), galleries and the audit log (``audit.jsonl``) live here.
        detector, embedder: backend names (``faceprint models list``); detector_options /
            embedder_options are passed to them.
        workers: inference threads (None: one per core). Each has its own detector; the
            embedder (onnxruntime, thread-safe) is shared.
        max_request_bytes: limit on a whole request body (413 above it).
        max_image_bytes: limit on one uploaded image (413 above it).
        max_pixels: limit on width × height read from the image header, before decoding (413).
        max_images_per_request: most images one enrolment request may upload.
        inference_timeout_s: an inference job running longer answers 504.
        upload_timeout_s: a request body arriving slower than this answers 408.
        max_pending: inference jobs queued or running before new ones answer 503.
        max_jobs_per_key: inference jobs one API key may have running at once (None: all workers
            but one, at least one), so one client cannot occupy every worker.
        max_pending_per_key: inference jobs one API key may have queued or running (503 beyond).
        rate_limit_per_s, rate_limit_burst: per-API-key token bucket (429 when empty).
        auth_failures_per_minute: failed authentications (no key, malformed, unknown or wrong
            secret) one client address may make per minute before 429; the same limit applies to
            each presented secret. Never counted per key id, so nobody can lock a real key out.
        operating_point: default calibrated threshold of verify/identify (``"fmr=0.001"`` or ``"eer"``).
        template_key: 32-byte AES-GCM key to encrypt templates at rest (None: not encrypted);
            see :func:`load_template_key`.
        keep_source_images: galleries created by this service keep the enrolled photos
            (default False: only templates are stored; uploads are never written to disk).
        shutdown_timeout_s: how long a shutdown waits for in-flight enrolments.
        enable_web_page: serve the small web client at ``/``.
        quality: a quality assessor (``"fiqa-fast"``: a few ms per face; ``"fiqa"``: about six
            embeddings per face) that the inference workers run on every face: detect, embed,
            verify and identify responses then carry each face's ``quality`` (0-100 and its
            components), and enrolment stores it with each template. None (default): off.
        min_quality: with ``quality``, enrolment refuses a photo whose face is below it (422
            ``low_quality``, nothing enrolled), and verify/identify flag such a probe in ``flags``.
        pad: an attack detector (``"minifasnet"``: liveness; ``"mesonet"``: deepfake screening) the
            workers run on every face they embed: verify and identify responses then carry each
            face's ``liveness`` (an attack score, higher = attack). Its weights come from the
            workers' model directory (``FACEPRINT_MODEL_DIR``). None (default): off.
        refuse_attacks: with ``pad``, refuse a photo whose face scores as an attack at enrolment,
            verify and identify (422 ``attack_detected``, nothing enrolled). Default False: report only.
        protect_secret: the secret of the service's protected galleries (``faceprint gallery create
            --protect``; docs/template-protection.md), see :func:`load_protect_secret`. It never
            travels in a request. None: protected galleries cannot be created or opened (their
            requests answer 503 ``protection_unavailable``).
        ckks_max_templates: most templates a CKKS protected gallery may hold. Its search is a linear
            encrypted scan, about 25-30 ms per template on one core (benchmarks/RESULTS.md), so the
            default 500 bounds one identify to about 15 s; one scan runs at a time per gallery.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    detector: str = DEFAULT_DETECTOR
    embedder: str = DEFAULT_EMBEDDER
    detector_options: dict[str, Any] = field(default_factory=dict)
    embedder_options: dict[str, Any] = field(default_factory=dict)
    workers: int | None = None
    max_request_bytes: int = 25 * 1024 * 1024
    max_image_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_images_per_request: int = 10
    inference_timeout_s: float = 30.0
    upload_timeout_s: float = 60.0
    max_pending: int = 64
    max_jobs_per_key: int | None = None
    max_pending_per_key: int = 16
    rate_limit_per_s: float = 10.0
    rate_limit_burst: int = 30
    auth_failures_per_minute: int = 10
    operating_point: str = "fmr=0.001"
    template_key: bytes | None = field(default=None, repr=False)
    keep_source_images: bool = False
    shutdown_timeout_s: float = 30.0
    enable_web_page: bool = True
    quality: str | None = None
    min_quality: float | None = None
    pad: str | None = None
    refuse_attacks: bool = False
    protect_secret: bytes | None = field(default=None, repr=False)
    ckks_max_templates: int = 500

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        for name in (
            "max_request_bytes",
            "max_image_bytes",
            "max_pixels",
            "max_images_per_request",
            "max_pending",
            "max_pending_per_key",
            "ckks_max_templates",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if self.max_image_bytes > self.max_request_bytes:
            raise ConfigurationError("max_image_bytes cannot be larger than max_request_bytes")
        for name in ("workers", "max_jobs_per_key"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigurationError(f"{name} must be a positive integer or None, got {value!r}")
        for name in ("inference_timeout_s", "upload_timeout_s", "rate_limit_per_s", "shutdown_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.rate_limit_burst < 1 or self.auth_failures_per_minute < 1:
            raise ConfigurationError("rate_limit_burst and auth_failures_per_minute must be at least 1")
        if self.template_key is not None and len(self.template_key) != 32:
            raise ConfigurationError("template_key must be 32 bytes (AES-256-GCM)")
        if self.protect_secret is not None:
            from ..protection.base import MIN_SECRET_BYTES

            if not isinstance(self.protect_secret, bytes) or len(self.protect_secret.strip()) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"protect_secret must be at least {MIN_SECRET_BYTES} bytes "
                    "(faceprint protect keygen FILE writes a good one)"
                )
        if self.quality is not None:
            from ..registry import quality_assessors

            quality_assessors.get(self.quality)  # an unknown name: UnknownModelError naming the known ones
        if self.min_quality is not None:
            from ..quality.select import check_min_quality

            check_min_quality(self.min_quality)
            if self.quality is None:
                raise ConfigurationError(
                    "min_quality needs a quality assessor: set quality (FACEPRINT_QUALITY=fiqa-fast)"
                )

        if self.pad is not None:
            from ..registry import attack_detectors

            attack_detectors.get(self.pad)  # an unknown name: UnknownModelError naming the known ones
        if self.refuse_attacks and self.pad is None:
            raise ConfigurationError("refuse_attacks needs an attack detector: set pad (FACEPRINT_PAD=minifasnet)")

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers is not None else _cores()

    @property
    def keys_db(self) -> Path:
        return self.data_dir / "keys.sqlite"

    @property
    def audit_log(self) -> Path:
        return self.data_dir / "audit.jsonl"

    @property
    def gallery_dir(self) -> Path:
        return self.data_dir / "galleries"

    def with_(self, **changes: Any) -> ServiceSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> ServiceSettings:
        """Settings from ``FACEPRINT_<NAME>`` variables (e.g. ``FACEPRINT_MAX_PIXELS``), then ``overrides``.

        The template key comes from ``FACEPRINT_TEMPLATE_KEY`` or the file named by
        ``FACEPRINT_TEMPLATE_KEY_FILE``; the protection secret from :func:`load_protect_secret`.
        """
        env = dict(os.environ if env is None else env)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("template_key", "protect_secret", "detector_options", "embedder_options"):
                continue
            raw = env.get(f"FACEPRINT_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _parse(f.name, raw, f.type)
        key = load_template_key(env)
        if key is not None:
            kwargs["template_key"] = key
        secret = load_protect_secret(env)
        if secret is not None:
            kwargs["protect_secret"] = secret
        kwargs.update(overrides)
        return cls(**kwargs)


def _parse(name: str, raw: str, typ: Any) -> Any:
    t = str(typ)
    try:
        if t.startswith("int"):
            return int(raw)
        if t.startswith("float"):
            return float(raw)
        if t == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if t == "Path":
            return Path(raw)
    except ValueError:
        raise ConfigurationError(f"FACEPRINT_{name.upper()}={raw!r} is not a valid {t}") from None
    return raw


def _decode_key(text: str, origin: str) -> bytes:
    text = text.strip()
    candidates: list[bytes] = []
    try:
        candidates.append(bytes.fromhex(text))
    except ValueError:
        pass
    try:
        candidates.append(
            base64.b64decode(text, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
        )
    except (binascii.Error, ValueError):
        pass
    for c in candidates:
        if len(c) == 32:
            return c
    raise ConfigurationError(
        f"{origin} must hold a 32-byte key as 64 hex digits or base64; make one with "
        '`python -c "import secrets; print(secrets.token_hex(32))"`'
    )


def load_template_key(env: dict[str, str] | None = None) -> bytes | None:
    """The AES-256-GCM template key from ``FACEPRINT_TEMPLATE_KEY`` or ``FACEPRINT_TEMPLATE_KEY_FILE``."""
    env = dict(os.environ if env is None else env)
    text = env.get(TEMPLATE_KEY_ENV)
    if text:
        return _decode_key(text, TEMPLATE_KEY_ENV)
    path = env.get(TEMPLATE_KEY_ENV + "_FILE")
    if path:
        try:
            content = Path(path).read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the template key file {path}: {exc.strerror or exc}") from exc
        return _decode_key(content, f"template key file {path}")
    return None


def load_protect_secret(env: dict[str, str] | None = None) -> bytes | None:
    """The secret of protected galleries: the file named by ``FACEPRINT_PROTECT_SECRET_FILE`` (trailing
    newline dropped; refused unless only its owner can read it, mode 0600 or 0400), else
    ``FACEPRINT_PROTECT_SECRET``; None when neither is set."""
    import stat

    env = dict(os.environ if env is None else env)
    path = env.get(PROTECT_SECRET_ENV + "_FILE")
    if path:
        try:
            mode = Path(path).stat().st_mode
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the protection secret file {path}: {exc.strerror or exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the protection secret file {path} can be read by other users (mode {stat.S_IMODE(mode):o}): "
                f"chmod 600 {path}"
            )
        return raw.rstrip(b"\r\n")
    text = env.get(PROTECT_SECRET_ENV)
    return text.encode("utf-8") if text else None
