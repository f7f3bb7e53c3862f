"""Turn any image input into an RGB ``uint8`` array of shape ``(H, W, 3)`` - safely.

:func:`load_image` is the single entry point every other stage uses. It accepts a path,
encoded bytes, a binary file object, a numpy array or a :class:`PIL.Image.Image` and
returns a new, C-contiguous, writable ``numpy.ndarray`` of dtype ``uint8`` and shape
``(H, W, 3)`` in RGB channel order.

Safety rules:

* Only mainstream photo formats are decoded (see :data:`SUPPORTED_FORMATS`); anything else
  (text, PDF, HTML, SVG, archives, random bytes) raises :class:`UnsupportedImageError`.
* The pixel count is checked from the header, *before* the pixel data is decoded, so a
  decompression bomb costs microseconds, not gigabytes (:class:`ImageTooLargeError`).
* Truncated files are refused (:class:`TruncatedImageError`), never half-decoded. This
  module never changes Pillow's globals (``ImageFile.LOAD_TRUNCATED_IMAGES``,
  ``Image.MAX_IMAGE_PIXELS``); it only reads them.
* Inputs are never modified: files are opened read-only, file objects are read but not
  closed, arrays and PIL images given by the caller are copied, not changed.

Conversion rules (the same for every input kind, so a PNG file and the array it decodes to
give identical results):

* EXIF orientation is applied (``ImageOps.exif_transpose``).
* Animated GIF / WebP / APNG and multi-page TIFF: the first frame.
* Transparency (RGBA, LA, palette with ``tRNS``, ``(H, W, 4)`` arrays) is **composited onto
  white**: ``out = (rgb * a + 255 * (255 - a)) / 255``, rounded. Fully opaque pixels are
  unchanged; fully transparent ones become white.
* 16-bit data (PNG/TIFF ``I;16``, ``uint16`` arrays) is scaled by ``1/257`` and rounded, so
  ``65535 -> 255`` and ``257 * k -> k``.
* Grey (L, 1, I;16, I, F) is replicated to three channels; CMYK, YCbCr, palette, HSV and
  LAB go through Pillow's ``convert("RGB")`` (no ICC colour management).
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
from typing import IO, Any, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import (
    ConfigurationError,
    EmptyImageError,
    FaceprintError,
    ImageDecodeError,
    ImageDimensionError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    TruncatedImageError,
    UnsupportedImageError,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_FILE_BYTES",
    "SUPPORTED_FORMATS",
    "ImageSource",
    "describe_source",
    "load_image",
    "read_image_header",
]

logger = logging.getLogger(__name__)

#: Default pixel limit (width x height) of :func:`load_image`: 40 megapixels.
DEFAULT_MAX_PIXELS: int = 40_000_000

#: Default limit on the encoded size of a path, bytes or file-object input: 200 MiB.
MAX_FILE_BYTES: int = 200 * 1024 * 1024

#: Pillow format names :func:`load_image` decodes, in the order they are tried. Only those
#: the installed Pillow supports are used (``AVIF`` needs Pillow's AVIF support, ``HEIF``
#: a registered opener such as ``pillow_heif.register_heif_opener()``).
SUPPORTED_FORMATS: tuple[str, ...] = (
    "JPEG",  # includes MPO (multi-picture JPEG from cameras)
    "PNG",  # includes APNG
    "GIF",
    "WEBP",
    "BMP",
    "TIFF",
    "PPM",  # PBM / PGM / PPM / PNM
    "AVIF",
    "HEIF",
)

_FORMAT_LABELS: dict[str, str] = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "GIF": "GIF",
    "WEBP": "WebP",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "PPM": "PNM (PBM/PGM/PPM)",
    "AVIF": "AVIF",
    "HEIF": "HEIF/HEIC",
}

#: Everything :func:`load_image` accepts: a path (``str`` or ``os.PathLike``), encoded image
#: bytes (``bytes``, ``bytearray``, ``memoryview``), a binary file object (anything with
#: ``.read``), a numpy array or a ``PIL.Image.Image``.
ImageSource: TypeAlias = (
    str
    | os.PathLike[str]
    | os.PathLike[bytes]
    | bytes
    | bytearray
    | memoryview
    | IO[bytes]
    | npt.NDArray[Any]
    | Image.Image
)

_READ_CHUNK = 1 << 20
_FLOAT_TOLERANCE = 0.01  # float pixels this far outside [0, 1] are clipped, not refused
_PIL_BOMB_RE = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+)")
_warned_truncated_global = False


# --- public helpers ----------------------------------------------------------------------


def describe_source(source: object) -> str:
    """Return a short, human-readable label for ``source`` (for error messages and logs).

    Examples: ``"photos/a.jpg"``, ``"<bytes: 1234>"``, ``"<file 'a.jpg'>"``,
    ``"<array (480, 640, 3) uint8>"``, ``"<PIL.Image RGB 640x480>"``. Never raises and never
    reads from ``source``.
    """
    try:
        if isinstance(source, str):
            return source if source else "<empty path>"
        if isinstance(source, os.PathLike):
            return os.fsdecode(os.fspath(source))
        if isinstance(source, (bytes, bytearray)):
            return f"<{type(source).__name__}: {len(source)}>"
        if isinstance(source, memoryview):
            return f"<memoryview: {source.nbytes}>"
        if isinstance(source, np.ndarray):
            return f"<array {tuple(source.shape)} {source.dtype}>"
        if isinstance(source, Image.Image):
            w, h = source.size
            label = f"<PIL.Image {source.mode} {w}x{h}"
            filename = getattr(source, "filename", "")
            if filename:
                label += f" from {os.fsdecode(filename)}"
            return label + ">"
        if hasattr(source, "read"):
            name = getattr(source, "name", None)
            if isinstance(name, (str, bytes)) and name:
                return f"<file {os.fsdecode(name)!r}>"
            return f"<file object {type(source).__name__}>"
    except Exception:  # a label must never be the thing that fails
        pass
    return f"<{type(source).__name__}>"


def read_image_header(data: bytes | bytearray | memoryview) -> tuple[str, int, int]:
    """Identify encoded image bytes from their header without decoding the pixels.

    Args:
        data: The encoded file contents (at least the header; the rest may be missing).

    Returns:
        ``(format, width, height)``: Pillow's format name (``"JPEG"``, ``"PNG"`` …) and the
        size *as stored*, i.e. before EXIF orientation is applied.

    Raises:
        EmptyImageError: ``data`` is empty.
        UnsupportedImageError: not one of :data:`SUPPORTED_FORMATS`.
        TruncatedImageError: a supported format whose header is cut off.
        ImageDecodeError: a supported format whose header is corrupt.
        ImageTooLargeError: the header declares more pixels than Pillow's own hard limit.
    """
    label = describe_source(data)
    raw = bytes(data)
    if not raw:
        raise EmptyImageError("no data (0 bytes)", source=label)
    with io.BytesIO(raw) as stream:
        im = _open(stream, label, max_pixels=None)
        with im:
            return str(im.format), int(im.width), int(im.height)


def load_image(
    source: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = MAX_FILE_BYTES,
) -> npt.NDArray[np.uint8]:
    """Load ``source`` as an RGB ``uint8`` array of shape ``(H, W, 3)``.

    Args:
        source: A path (``str`` / ``os.PathLike``); encoded image bytes (``bytes``,
            ``bytearray``, ``memoryview``); a binary file object (read from its current
            position to the end, left open); a numpy array; or a ``PIL.Image.Image`` (its
            current frame). Arrays may be ``(H, W)`` grey, ``(H, W, 1)``, ``(H, W, 3)``
            (assumed **RGB**: convert OpenCV's BGR first) or ``(H, W, 4)`` RGBA, of dtype
            ``uint8``, ``uint16`` (scaled by 1/257), ``bool`` (0/255) or floating point in
            ``[0, 1]`` (scaled by 255, rounded). Other integer dtypes are accepted when every
            value lies in ``[0, 255]``.
        max_pixels: Refuse images with more than this many pixels (width x height), checked
            from the header before decoding. ``None`` disables faceprint's limit (Pillow's
            own hard limit, ``2 * PIL.Image.MAX_IMAGE_PIXELS``, still applies to encoded
            input; faceprint never changes that global).
        max_bytes: Refuse encoded inputs (path, bytes, file object) larger than this many
            bytes. ``None`` disables the check.

    Returns:
        A new C-contiguous, writable ``numpy.ndarray``, dtype ``uint8``, shape
        ``(H, W, 3)``, RGB, EXIF orientation applied, transparency composited onto white.
        A 1x1 image is valid.

    Raises:
        ImageError: the path does not exist, is a directory or cannot be read.
        EmptyImageError: zero bytes, an empty file or an array with no pixels.
        UnsupportedImageError: not an image in a supported format, or an unsupported
            ``source`` type.
        TruncatedImageError: the encoded image ends before its data does.
        ImageDecodeError: a supported format that fails to decode.
        ImageTooLargeError: more than ``max_pixels`` pixels or ``max_bytes`` bytes.
        ImageDimensionError: an array whose shape, dtype or values are not an image.
    """
    _check_limit("max_pixels", max_pixels)
    _check_limit("max_bytes", max_bytes)
    label = describe_source(source)

    if isinstance(source, Image.Image):
        return _from_pil(source, label, max_pixels=max_pixels, stream=None)
    if isinstance(source, np.ndarray):
        return _from_array(source, label, max_pixels=max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = source.nbytes if isinstance(source, memoryview) else len(source)
        _check_byte_size(size, label, max_bytes)
        return _from_bytes(bytes(source), label, max_pixels=max_pixels)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(source, label, max_pixels=max_pixels, max_bytes=max_bytes)
    if hasattr(source, "read"):
        data = _read_file_object(source, label, max_bytes=max_bytes)
        return _from_bytes(data, label, max_pixels=max_pixels)
    raise UnsupportedImageError(
        f"cannot load an image from a {type(source).__module__}.{type(source).__qualname__}; "
        "pass a path, encoded bytes, a binary file object, a numpy array or a PIL.Image",
        source=label,
    )


# --- input kinds ---------------------------------------------------------------------------


def _check_limit(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer or None, got {value!r}")


def _check_byte_size(size: int, label: str, max_bytes: int | None) -> None:
    if size == 0:
        raise EmptyImageError("no data (0 bytes)", source=label)
    if max_bytes is not None and size > max_bytes:
        raise ImageTooLargeError(
            f"{size:,} bytes is over the limit of max_bytes={max_bytes:,}; pass a larger "
            "max_bytes= to load_image (or max_bytes=None) if this file is expected",
            source=label,
        )


def _from_path(
    source: str | os.PathLike[Any],
    label: str,
    *,
    max_pixels: int | None,
    max_bytes: int | None,
) -> npt.NDArray[np.uint8]:
    path = os.fsdecode(os.fspath(source))
    if not path:
        raise ImageError("empty path: pass the path of an image file")
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        hint = ""
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path):
            hint = " (URLs are not downloaded: fetch the file first and pass its bytes)"
        raise ImageNotFoundError(f"file not found{hint}", source=label) from exc
    except PermissionError as exc:
        raise ImageError("permission denied: cannot read this file", source=label) from exc
    except OSError as exc:
        raise ImageError(f"cannot access file: {exc.strerror or exc}", source=label) from exc

    if stat.S_ISDIR(st.st_mode):
        raise ImageError(
            "is a directory, not an image file; pass one file (iterate over the folder's files to load several)",
            source=label,
        )
    regular = stat.S_ISREG(st.st_mode)
    if regular:
        _check_byte_size(st.st_size, label, max_bytes)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; read-only, never written
    except PermissionError as exc:
        raise ImageError("permission denied: cannot read this file", source=label) from exc
    except OSError as exc:
        raise ImageError(f"cannot open file: {exc.strerror or exc}", source=label) from exc
    with fh:
        if not regular:  # a FIFO or device: no size up front, read it with the byte limit
            data = _read_file_object(fh, label, max_bytes=max_bytes)
            return _from_bytes(data, label, max_pixels=max_pixels)
        im = _open(fh, label, max_pixels=max_pixels)
        with im:
            return _from_pil(im, label, max_pixels=max_pixels, stream=fh)


def _from_bytes(data: bytes, label: str, *, max_pixels: int | None) -> npt.NDArray[np.uint8]:
    if not data:
        raise EmptyImageError("no data (0 bytes)", source=label)
    with io.BytesIO(data) as stream:
        im = _open(stream, label, max_pixels=max_pixels)
        with im:
            return _from_pil(im, label, max_pixels=max_pixels, stream=stream)


def _read_file_object(fobj: Any, label: str, *, max_bytes: int | None) -> bytes:
    """Read ``fobj`` from its position to EOF (at most ``max_bytes + 1`` bytes); never close it."""
    chunks: list[bytes] = []
    total = 0
    while True:
        want = _READ_CHUNK if max_bytes is None else min(_READ_CHUNK, max_bytes + 1 - total)
        try:
            chunk = fobj.read(want)
        except OSError as exc:
            raise ImageError(f"cannot read file object: {exc}", source=label) from exc
        if isinstance(chunk, str):
            raise UnsupportedImageError("file object is in text mode; open the file with mode 'rb'", source=label)
        if not chunk:
            break
        chunks.append(bytes(chunk))
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise ImageTooLargeError(
                f"more than max_bytes={max_bytes:,} bytes; pass a larger max_bytes= to "
                "load_image (or max_bytes=None) if this file is expected",
                source=label,
            )
    data = b"".join(chunks)
    if not data:
        raise EmptyImageError("no data (0 bytes read from the file object)", source=label)
    return data


# --- decoding with Pillow --------------------------------------------------------------------


def _available_formats() -> tuple[str, ...]:
    if not all(fmt in Image.OPEN for fmt in SUPPORTED_FORMATS[:7]):
        Image.init()
    return tuple(fmt for fmt in SUPPORTED_FORMATS if fmt in Image.OPEN)


def _supported_text() -> str:
    return ", ".join(_FORMAT_LABELS.get(fmt, fmt) for fmt in _available_formats())


def _open(stream: IO[bytes], label: str, *, max_pixels: int | None) -> ImageFile.ImageFile:
    """Open ``stream`` lazily (header only) with the allowed formats and check the pixel count."""
    try:
        im = Image.open(stream, formats=list(_available_formats()))
    except Image.DecompressionBombError as exc:
        raise _pil_bomb_error(exc, label, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise _unidentified_error(stream, label) from exc
    except FaceprintError:
        raise
    except Exception as exc:  # plugins raise OSError, SyntaxError, ValueError … on bad headers
        raise _decode_error(exc, stream, label, "cannot read the image header") from exc
    try:
        _check_pixels(im.width, im.height, label, max_pixels)
    except BaseException:
        im.close()
        raise
    return im


def _check_pixels(width: int, height: int, label: str, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"image has no pixels ({width}x{height})", source=label)
    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {pixels:,} pixels, over the limit of "
            f"max_pixels={max_pixels:,}; pass a larger max_pixels= to load_image "
            "(CLI: --max-pixels), or max_pixels=None to disable the limit, if you trust "
            "this image",
            source=label,
        )


def _pil_bomb_error(exc: Exception, label: str, max_pixels: int | None) -> ImageTooLargeError:
    match = _PIL_BOMB_RE.search(str(exc))
    size = f"{int(match.group(1)):,} pixels" if match else "too many pixels"
    pil_limit = f"{int(match.group(2)):,}" if match else "2 x PIL.Image.MAX_IMAGE_PIXELS"
    ours = f"max_pixels={max_pixels:,}" if max_pixels is not None else "max_pixels=None"
    return ImageTooLargeError(
        f"image is {size}, over Pillow's hard limit of {pil_limit} pixels "
        f"(2 x PIL.Image.MAX_IMAGE_PIXELS; faceprint's {ours}); this looks like a "
        "decompression bomb. If the image is trusted, raise PIL.Image.MAX_IMAGE_PIXELS in "
        "your application and pass a larger max_pixels= (CLI: --max-pixels); faceprint "
        "never changes Pillow's globals",
        source=label,
    )


def _from_pil(
    im: Image.Image,
    label: str,
    *,
    max_pixels: int | None,
    stream: IO[bytes] | None,
) -> npt.NDArray[np.uint8]:
    _check_pixels(im.width, im.height, label, max_pixels)
    _warn_if_truncated_allowed()
    fmt = getattr(im, "format", None)
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise _pil_bomb_error(exc, label, max_pixels) from exc
    except FaceprintError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise _decode_error(exc, stream, label, "cannot decode the image data") from exc

    try:
        oriented = ImageOps.exif_transpose(im)
    except Exception as exc:  # a broken EXIF block must not cost the picture
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", label, exc)
        oriented = im
    if oriented is None:  # pragma: no cover - only with in_place=True
        oriented = im

    out = _pil_to_rgb(oriented, label)
    logger.debug("loaded %s: format=%s mode=%s -> %s", label, fmt, im.mode, tuple(out.shape))
    return out


def _pil_to_rgb(im: Image.Image, label: str) -> npt.NDArray[np.uint8]:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if mode.startswith("I;16"):
            return _from_array(arr.astype(np.uint16, copy=False), label, max_pixels=None)
        if mode == "F":
            return _from_array(arr, label, max_pixels=None)
        return _int_image_to_rgb(arr, label)
    try:
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
            rgba = np.asarray(im.convert("RGBA"))
            return _composite_on_white(rgba)
        rgb = im if mode == "RGB" else im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise UnsupportedImageError(f"cannot convert pixel mode {mode!r} to RGB ({exc})", source=label) from exc
    return _own_contiguous(np.asarray(rgb))


def _int_image_to_rgb(arr: npt.NDArray[Any], label: str) -> npt.NDArray[np.uint8]:
    """Pillow mode ``I`` (int32): 8-bit values pass through, 16-bit values are scaled by 1/257."""
    lo, hi = int(arr.min()), int(arr.max())
    if lo >= 0 and hi <= 255:
        return _gray_to_rgb(arr.astype(np.uint8))
    if lo >= 0 and hi <= 65535:
        return _from_array(arr.astype(np.uint16), label, max_pixels=None)
    raise UnsupportedImageError(
        f"32-bit integer pixel values in [{lo}, {hi}] have no defined brightness scale; "
        "convert the image to 8 or 16 bits first",
        source=label,
    )


def _warn_if_truncated_allowed() -> None:
    global _warned_truncated_global
    if ImageFile.LOAD_TRUNCATED_IMAGES and not _warned_truncated_global:
        _warned_truncated_global = True
        logger.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process: truncated images "
            "may be decoded partially instead of raising TruncatedImageError"
        )


# --- error classification --------------------------------------------------------------------

_MAGIC: tuple[tuple[str, bytes, int], ...] = (
    ("JPEG", b"\xff\xd8\xff", 0),
    ("PNG", b"\x89PNG\r\n\x1a\n", 0),
    ("GIF", b"GIF87a", 0),
    ("GIF", b"GIF89a", 0),
    ("TIFF", b"II*\x00", 0),
    ("TIFF", b"MM\x00*", 0),
    ("TIFF", b"II+\x00", 0),
    ("TIFF", b"MM\x00+", 0),
)


def _head_tail(stream: IO[bytes] | None, n: int = 64) -> tuple[bytes, bytes, int]:
    """First and last ``n`` bytes and total size of a seekable stream (empty if unavailable)."""
    if stream is None:
        return b"", b"", -1
    try:
        pos = stream.tell()
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        head = stream.read(n)
        stream.seek(max(0, size - n))
        tail = stream.read(n)
        stream.seek(pos)
        return head, tail, size
    except (OSError, ValueError):
        return b"", b"", -1


def _sniff_format(head: bytes) -> str | None:
    """The supported format ``head`` claims to be by its magic bytes, or ``None``."""
    for fmt, magic, offset in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIF"
    if head[:2] == b"BM" and len(head) >= 14 and not _looks_like_text(head):
        return "BMP"
    return None


def _looks_truncated(fmt: str | None, head: bytes, tail: bytes, size: int) -> bool | None:
    """Structural evidence that a file of format ``fmt`` was cut short (``None``: can't tell)."""
    if size < 0 or fmt is None:
        return None
    if fmt == "PNG":
        return b"IEND" not in tail
    if fmt == "GIF":
        return not tail.rstrip(b"\x00").endswith(b";")
    if fmt == "WEBP" and len(head) >= 8:
        declared = int.from_bytes(head[4:8], "little") + 8
        return size < declared
    if fmt == "JPEG":  # FF D9 (end of image) cannot occur inside entropy-coded data
        return size < 128 or b"\xff\xd9" not in tail
    return True if size < 64 else None


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the sample
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\r\n\t\f\v" or ch == "\ufeff" for ch in text)


def _what_is_it(head: bytes) -> str:
    """A guess at what non-image bytes are, for the error message."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page (a download link that returned a web page?)"
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in stripped):
        return "an SVG (vector) image; rasterise it to PNG first"
    if stripped.startswith(b"<?xml"):
        return "an XML document"
    if stripped.startswith((b"{", b"[")) and _looks_like_text(head):
        return "JSON text"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head[4:8] == b"ftyp":
        return "an ISO media file (HEIC/AVIF/MP4) this Pillow cannot decode"
    if _looks_like_text(head):
        return "text"
    return "not a recognised image format"


def _unidentified_error(stream: IO[bytes], label: str) -> ImageError:
    head, tail, size = _head_tail(stream)
    fmt = _sniff_format(head)
    supported = _available_formats()
    n = f"{size:,} bytes" if size >= 0 else "unknown size"
    if fmt is not None and fmt in supported:
        if _looks_truncated(fmt, head, tail, size) is not False:
            return TruncatedImageError(
                f"starts like a {_FORMAT_LABELS[fmt]} file but is cut off ({n}); the file is "
                "incomplete - re-download or re-copy it",
                source=label,
            )
        return ImageDecodeError(
            f"starts like a {_FORMAT_LABELS[fmt]} file but its header is corrupt ({n})",
            source=label,
        )
    what = _what_is_it(head) if fmt is None else f"a {fmt} image, which this Pillow cannot decode"
    return UnsupportedImageError(
        f"not a supported image ({what}; {n}); supported formats: {_supported_text()}",
        source=label,
    )


def _decode_error(exc: BaseException, stream: IO[bytes] | None, label: str, what: str) -> ImageDecodeError:
    message = str(exc) or type(exc).__name__
    head, tail, size = _head_tail(stream)
    fmt = _sniff_format(head)
    structural = _looks_truncated(fmt, head, tail, size)
    truncated = "truncated" in message.lower() if structural is None else structural
    n = f", {size:,} bytes" if size >= 0 else ""
    if truncated:
        return TruncatedImageError(
            f"image file is truncated (cut off before its data ends{n}: {message}); "
            "the file is incomplete - re-download or re-copy it",
            source=label,
        )
    kind = f"{_FORMAT_LABELS.get(fmt, fmt)} " if fmt else ""
    return ImageDecodeError(f"{what}: corrupt {kind}data ({message}{n})", source=label)


# --- arrays -----------------------------------------------------------------------------------


def _own_contiguous(arr: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """``arr`` as a C-contiguous, writable uint8 array that shares memory with nothing given."""
    return np.array(arr, dtype=np.uint8, order="C", copy=True)


def _gray_to_rgb(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``(H, W)`` uint8 -> new ``(H, W, 3)`` uint8."""
    out = np.empty((*gray.shape, 3), dtype=np.uint8)
    out[...] = gray[..., None]
    return out


def _composite_on_white(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``(H, W, 4)`` uint8 RGBA -> ``(H, W, 3)`` uint8 RGB over a white background, rounded."""
    alpha = rgba[..., 3:4].astype(np.uint16)
    if bool((alpha == 255).all()):
        return _own_contiguous(rgba[..., :3])
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out, dtype=np.uint8)


def _from_array(arr: npt.NDArray[Any], label: str, *, max_pixels: int | None) -> npt.NDArray[np.uint8]:
    """Validate and convert an array input; the caller's array is never modified."""
    shape = tuple(arr.shape)
    if arr.ndim not in (2, 3):
        raise ImageDimensionError(
            f"array of shape {shape} is not an image; expected (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA",
            source=label,
        )
    if arr.ndim == 3 and shape[2] not in (1, 3, 4):
        raise ImageDimensionError(
            f"array of shape {shape} has {shape[2]} channels; expected 1 (grey), 3 (RGB) "
            "or 4 (RGBA) in the last axis (channels-first arrays must be transposed)",
            source=label,
        )
    if arr.size == 0:
        raise EmptyImageError(f"array of shape {shape} has no pixels", source=label)
    _check_pixels(shape[1], shape[0], label, max_pixels)

    u8 = _to_uint8(arr, label)
    if u8.ndim == 2:
        return _gray_to_rgb(u8)
    channels = u8.shape[2]
    if channels == 1:
        return _gray_to_rgb(u8[..., 0])
    if channels == 4:
        return _composite_on_white(u8)
    return _own_contiguous(u8)


def _to_uint8(arr: npt.NDArray[Any], label: str) -> npt.NDArray[np.uint8]:
    """Scale any supported dtype to uint8 (may return ``arr`` itself when already uint8)."""
    dtype = arr.dtype
    if dtype == np.uint8:
        return arr
    if dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if dtype == np.uint16:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        work = arr if dtype in (np.float32, np.float64) else arr.astype(np.float32)
        if not bool(np.isfinite(work).all()):
            bad = int(np.count_nonzero(~np.isfinite(work)))
            raise ImageDimensionError(
                f"{dtype} array of shape {tuple(arr.shape)} holds {bad} NaN/inf values; pixels must be finite",
                source=label,
            )
        lo, hi = float(work.min()), float(work.max())
        if lo < -_FLOAT_TOLERANCE or hi > 1.0 + _FLOAT_TOLERANCE:
            raise ImageDimensionError(
                f"{dtype} array values lie in [{lo:g}, {hi:g}], but floating-point images "
                "must lie in [0, 1]; divide by 255 (or pass a uint8 array) if they are "
                "0-255 values",
                source=label,
            )
        return np.clip(np.rint(work * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ImageDimensionError(
                f"{dtype} array values lie in [{lo}, {hi}]; integer arrays other than uint8 "
                "and uint16 must hold 0-255 values (cast 16-bit data to uint16)",
                source=label,
            )
        return arr.astype(np.uint8)
    raise ImageDimensionError(
        f"array dtype {dtype} is not an image dtype; use uint8, uint16, bool or float in [0, 1]",
        source=label,
    )
