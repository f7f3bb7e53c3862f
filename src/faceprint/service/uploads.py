"""Uploads held in memory only, with limits checked before any pixel is decoded.

* :class:`BodyLimitMiddleware` refuses a body over ``max_request_bytes`` from its
  ``Content-Length`` before reading it, and counts the bytes of a body without one (chunked)
  as they arrive: 413 either way.
* :func:`read_form` parses ``multipart/form-data`` from the request stream into ``bytes`` in
  memory. (Starlette's parser spools files over 1 MiB to a temporary file on disk; uploads
  here never touch the disk.) Each file is limited to ``max_image_bytes``.
* :func:`check_image` sniffs the magic bytes (the declared content type is ignored, 415);
  :func:`decode_image` (in an inference thread) reads the width and height from the header
  and refuses more than ``max_pixels`` (413) before decoding a single pixel.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import (
    EmptyImageError,
    FaceprintError,
    ImageError,
    ImageTooLargeError,
    RequestTooLargeError,
    UnsupportedImageError,
)
from ..io import load_image
from .errors import faceprint_error_response

__all__ = ["BodyLimitMiddleware", "Form", "read_form", "sniff_image", "check_image", "decode_image", "relabel"]

log = logging.getLogger(__name__)

#: (magic prefix, offset, format) of the image formats the service accepts.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),  # after b"RIFF" + size
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)
_PNM = {b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"avif", b"avis"}


def sniff_image(data: bytes) -> str | None:
    """The image format named by ``data``'s magic bytes, or None (the declared type is never used)."""
    for magic, offset, fmt in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if fmt == "WEBP" and data[:4] != b"RIFF":
                continue
            return fmt
    if data[:2] in _PNM and len(data) > 2 and data[2:3] in b" \t\r\n#":
        return "PPM"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "AVIF" if data[8:12] in (b"avif", b"avis") else "HEIF"
    return None


def relabel(exc: ImageError, field_name: str) -> ImageError:
    """The same error, naming the form field instead of an in-memory buffer (``<bytes: 1234>``)."""
    text = str(exc)
    if exc.source and text.startswith(exc.source + ": "):
        text = text[len(exc.source) + 2 :]
    try:
        return type(exc)(text, source=f"'{field_name}'")
    except TypeError:  # pragma: no cover - a subclass with another signature
        return exc


def check_image(data: bytes, field_name: str, *, max_bytes: int) -> None:
    """Cheap checks of an uploaded image in the event loop: its size and its magic bytes.

    The header (format, width, height) and the pixel limit are checked next, in the inference
    thread, by :func:`decode_image` — still before any pixel is decoded.

    Raises:
        RequestTooLargeError: more than ``max_bytes`` bytes (413).
        EmptyImageError: no bytes (422).
        UnsupportedImageError: the bytes are not an image format the service reads (415).
    """
    if len(data) > max_bytes:
        raise RequestTooLargeError(f"'{field_name}' is {len(data):,} bytes; the limit is {max_bytes:,} bytes per image")
    if not data:
        raise EmptyImageError("no data (0 bytes)", source=f"'{field_name}'")
    if sniff_image(data[:64]) is None:
        raise UnsupportedImageError(
            f"'{field_name}' is not an image (its content is not JPEG, PNG, GIF, WebP, BMP, TIFF, PNM, AVIF or HEIF)",
        )


def decode_image(data: bytes, field_name: str, *, max_pixels: int) -> npt.NDArray[np.uint8]:
    """Decode an uploaded image to RGB uint8 (H, W, 3), refusing more than ``max_pixels`` pixels
    from the header before decoding (:class:`ImageTooLargeError`, 413). Errors name the field."""
    try:
        return load_image(data, max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        raise ImageTooLargeError(f"'{field_name}' {_pixels_text(str(exc))}; resize it first") from None
    except ImageError as exc:
        raise relabel(exc, field_name) from None


def _pixels_text(message: str) -> str:
    m = re.search(r"image is (\d+x\d+ = [\d,]+ pixels), over the limit of max_pixels=([\d,]+)", message)
    if m:
        return f"is {m.group(1)}; the limit is {m.group(2)} pixels"
    return "has too many pixels"


@dataclass(slots=True)
class Form:
    """A parsed multipart form: text fields and files (as ``bytes``), both by field name."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[bytes]] = field(default_factory=dict)

    def file(self, name: str) -> bytes:
        got = self.files.get(name)
        if not got:
            raise HTTPException(422, f"the form needs a file field {name!r}")
        if len(got) > 1:
            raise HTTPException(422, f"send one file in field {name!r}, not {len(got)}")
        return got[0]

    def text(self, name: str) -> str | None:
        got = self.fields.get(name)
        return got[-1] if got else None


class _FormBuilder:
    """python-multipart callbacks that keep every part in memory, within limits."""

    def __init__(self, *, max_files: int, max_file_bytes: int, max_fields: int, max_field_bytes: int) -> None:
        self.form = Form()
        self.max_files = max_files
        self.max_file_bytes = max_file_bytes
        self.max_fields = max_fields
        self.max_field_bytes = max_field_bytes
        self._n_files = 0
        self._n_fields = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._buf = bytearray()

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._buf = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise HTTPException(400, 'each multipart part needs a Content-Disposition "name"')
        self._name = raw_name.decode("utf-8", "replace")[:100]
        self._is_file = b"filename" in options
        if self._is_file:
            self._n_files += 1
            if self._n_files > self.max_files:
                raise RequestTooLargeError(f"too many files: at most {self.max_files} per request")
        else:
            self._n_fields += 1
            if self._n_fields > self.max_fields:
                raise HTTPException(400, f"too many form fields: at most {self.max_fields}")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        limit = self.max_file_bytes if self._is_file else self.max_field_bytes
        if len(self._buf) + (end - start) > limit:
            what = f"file '{self._name}'" if self._is_file else f"field '{self._name}'"
            raise RequestTooLargeError(f"{what} is over the limit of {limit:,} bytes")
        self._buf += data[start:end]

    def on_part_end(self) -> None:
        if self._is_file:
            self.form.files.setdefault(self._name, []).append(bytes(self._buf))
        else:
            self.form.fields.setdefault(self._name, []).append(self._buf.decode("utf-8", "replace"))
        self._buf = bytearray()


async def read_form(
    request: Request,
    *,
    max_files: int,
    max_file_bytes: int,
    timeout_s: float,
    max_fields: int = 20,
    max_field_bytes: int = 4096,
) -> Form:
    """Parse the request's ``multipart/form-data`` body in memory.

    Raises 415 for another content type, 400 for a malformed body, 413 over the limits and
    408 when the body arrives slower than ``timeout_s``.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise HTTPException(415, "send the images as multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "the multipart/form-data content type has no boundary")
    builder = _FormBuilder(
        max_files=max_files, max_file_bytes=max_file_bytes, max_fields=max_fields, max_field_bytes=max_field_bytes
    )
    callbacks: Any = {
        name: getattr(builder, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                if chunk:
                    parser.write(chunk)
        parser.finalize()
    except TimeoutError:
        raise HTTPException(408, f"the upload took longer than {timeout_s:g} s") from None
    except (HTTPException, FaceprintError):
        raise
    except Exception as exc:  # python-multipart's parse errors
        log.debug("malformed multipart body: %s", exc)
        raise HTTPException(400, "malformed multipart/form-data body") from None
    return builder.form


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: from Content-Length before reading, else while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                await self._refuse(scope, send, 400, "invalid Content-Length header")
                return
            if declared > self.max_bytes:
                await self._too_large(scope, send)
                return

        received = 0
        started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise RequestTooLargeError(f"the request body is over the limit of {self.max_bytes:,} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLargeError:
            if not exceeded or started:
                raise
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        exc = RequestTooLargeError(f"the request body is over the limit of {self.max_bytes:,} bytes")
        response = faceprint_error_response(exc, Request(scope))
        response.headers["Connection"] = "close"
        await response(scope, _no_receive, send)

    async def _refuse(self, scope: Scope, send: Send, status: int, detail: str) -> None:
        from .errors import problem_response

        response = problem_response(status, "bad_request", "Bad request", detail, request=Request(scope))
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - responses here never read the body
    return {"type": "http.disconnect"}
