"""Tests of faceprint.io.load_image: every input kind, every pixel mode, every bad input.

The bad-input corpus is generated in ``tmp_path`` with PIL/numpy; nothing binary is committed.
Real photographs come from ``FACEPRINT_TEST_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from faceprint.errors import (
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
from faceprint.io import (
    DEFAULT_MAX_PIXELS,
    describe_source,
    load_image,
    read_image_header,
)

DATA_DIR = Path(os.environ.get("FACEPRINT_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


# --- helpers -------------------------------------------------------------------------------


def assert_rgb(arr: np.ndarray, shape: tuple[int, int] | None = None) -> None:
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8
    assert arr.ndim == 3 and arr.shape[2] == 3
    assert arr.flags.c_contiguous and arr.flags.writeable
    if shape is not None:
        assert arr.shape[:2] == shape


def encode(im: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A minimal PNG (filter type 0 rows already included in ``rows``)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def photo_like(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth, JPEG-friendly RGB test image with distinct channels."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 2) % 256], axis=-1).astype(
        np.uint8
    )


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20000x20000 1-bit PNG: 400 megapixels that compress to a few dozen KB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (20000, 20000)).save(path, "PNG")
    return path


@pytest.fixture()
def jpeg_bytes() -> bytes:
    return encode(Image.fromarray(photo_like(120, 160)), "JPEG", quality=90)


# --- empty, truncated, unsupported, corrupt ------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.jpg", b"")
    with pytest.raises(EmptyImageError) as info:
        load_image(path)
    assert str(path) in str(info.value) and "0 bytes" in str(info.value)
    assert info.value.source == str(path)


@pytest.mark.parametrize("data", [b"", bytearray(), memoryview(b"")])
def test_empty_bytes(data: bytes) -> None:
    with pytest.raises(EmptyImageError, match="0 bytes"):
        load_image(data)


def test_empty_file_object() -> None:
    with pytest.raises(EmptyImageError, match="0 bytes"):
        load_image(io.BytesIO())


def test_truncated_jpeg_file(tmp_path: Path, jpeg_bytes: bytes) -> None:
    path = write(tmp_path, "half.jpg", jpeg_bytes[: len(jpeg_bytes) // 2])
    with pytest.raises(TruncatedImageError) as info:
        load_image(path)
    msg = str(info.value)
    assert str(path) in msg and "truncated" in msg
    # The same bytes in memory are refused too; partial images are never returned.
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(jpeg_bytes[: len(jpeg_bytes) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("cut", [3, 20, 60])
def test_jpeg_cut_inside_header(jpeg_bytes: bytes, cut: int) -> None:
    with pytest.raises(TruncatedImageError) as info:
        load_image(jpeg_bytes[:cut])
    assert f"<bytes: {cut}>" in str(info.value)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_truncated_png(tmp_path: Path, fraction: float) -> None:
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)), "PNG")
    path = write(tmp_path, "cut.png", data[: int(len(data) * fraction)])
    with pytest.raises(TruncatedImageError) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert "re-download" in str(info.value) or "truncated" in str(info.value)


def test_truncated_gif_and_webp() -> None:
    rng = np.random.default_rng(2)
    im = Image.fromarray(rng.integers(0, 256, (60, 60, 3), dtype=np.uint8))
    for fmt in ("GIF", "WEBP"):
        data = encode(im, fmt)
        with pytest.raises(TruncatedImageError):
            load_image(data[: len(data) // 2])


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.jpg", b"This is not a photo, just some notes.\n" * 20)
    with pytest.raises(UnsupportedImageError) as info:
        load_image(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "text" in msg
    assert "supported formats" in msg and "JPEG" in msg and "PNG" in msg


def test_pdf_bytes() -> None:
    data = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    with pytest.raises(UnsupportedImageError) as info:
        load_image(data)
    assert "PDF" in str(info.value) and "supported formats" in str(info.value)
    assert f"<bytes: {len(data)}>" in str(info.value)


def test_html_bytes() -> None:
    with pytest.raises(UnsupportedImageError, match="HTML"):
        load_image(b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>")


def test_random_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for i in range(20):
        data = rng.bytes(4096)
        if data[:2] == b"BM":  # pragma: no cover - astronomically unlikely
            continue
        path = write(tmp_path, f"random{i}.png", data)
        with pytest.raises(UnsupportedImageError) as info:
            load_image(path)
        assert "supported formats" in str(info.value) and str(path) in str(info.value)


def test_corrupt_png_is_decode_error_not_truncated() -> None:
    rng = np.random.default_rng(4)
    data = bytearray(encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "PNG"))
    start = data.index(b"IDAT") + 20
    for k in range(start, start + 40):
        data[k] ^= 0x5A
    with pytest.raises(ImageDecodeError) as info:
        load_image(bytes(data))
    assert not isinstance(info.value, TruncatedImageError)
    assert "corrupt" in str(info.value) and "PNG" in str(info.value)


def test_corrupt_jpeg_header_is_decode_error(jpeg_bytes: bytes) -> None:
    data = bytearray(jpeg_bytes)
    for k in range(4, 200):
        data[k] = 0xFF if k % 7 == 0 else data[k] ^ 0x33
    with pytest.raises(ImageDecodeError) as info:
        load_image(bytes(data))
    assert "JPEG" in str(info.value)


# --- size limits -----------------------------------------------------------------------------


def test_decompression_bomb_refused_quickly(bomb_png: Path) -> None:
    assert bomb_png.stat().st_size < 200_000
    with pytest.raises(ImageTooLargeError) as info:
        load_image(bomb_png)
    msg = str(info.value)
    assert str(bomb_png) in msg and "400,000,000" in msg and "max_pixels" in msg


def test_decompression_bomb_small_limit_from_header(bomb_png: Path) -> None:
    # only the signature and the IHDR chunk: no pixel data, so a refusal can only come from the header
    header_only = bomb_png.read_bytes()[:64]
    with pytest.raises(ImageTooLargeError) as info:
        load_image(header_only, max_pixels=1_000_000)
    assert "max_pixels" in str(info.value)


def test_decompression_bomb_still_refused_with_limit_disabled(bomb_png: Path) -> None:
    # Pillow's own hard limit (2 x MAX_IMAGE_PIXELS) is not switched off behind the user's back.
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError) as info:
        load_image(bomb_png, max_pixels=None)
    assert "MAX_IMAGE_PIXELS" in str(info.value)
    assert Image.MAX_IMAGE_PIXELS == before


def test_pixel_limit_message_and_override(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("1", (3000, 3000)).save(path)
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path, max_pixels=1_000_000)
    msg = str(info.value)
    assert "3000x3000" in msg and "9,000,000" in msg and "max_pixels=1,000,000" in msg
    assert "--max-pixels" in msg and str(path) in msg
    out = load_image(path, max_pixels=None)
    assert_rgb(out, (3000, 3000))
    assert out.max() == 0


def test_pixel_limit_checked_from_header_only(tmp_path: Path) -> None:
    # The PNG header up to the first bytes of pixel data only. The size check must fire
    # before anything tries to decode (which would raise TruncatedImageError instead).
    Image.new("L", (5000, 4000)).save(tmp_path / "big.png")
    full = (tmp_path / "big.png").read_bytes()
    header_only = full[: full.index(b"IDAT") + 24]
    with pytest.raises(ImageTooLargeError, match="5000x4000"):
        load_image(header_only, max_pixels=DEFAULT_MAX_PIXELS // 4)
    with pytest.raises(TruncatedImageError):
        load_image(header_only)


def test_pixel_limit_applies_to_arrays_and_pil() -> None:
    with pytest.raises(ImageTooLargeError, match="max_pixels=100"):
        load_image(np.zeros((20, 20, 3), np.uint8), max_pixels=100)
    with pytest.raises(ImageTooLargeError, match="20x10"):
        load_image(Image.new("RGB", (20, 10)), max_pixels=100)
    assert_rgb(load_image(np.zeros((10, 10, 3), np.uint8), max_pixels=100), (10, 10))


def test_byte_limit(tmp_path: Path, jpeg_bytes: bytes) -> None:
    path = write(tmp_path, "a.jpg", jpeg_bytes)
    for source in (path, jpeg_bytes, io.BytesIO(jpeg_bytes)):
        with pytest.raises(ImageTooLargeError, match="max_bytes=1,000"):
            load_image(source, max_bytes=1000)
    assert_rgb(load_image(path, max_bytes=None), (120, 160))


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "10"])
def test_invalid_limits(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_pixels"):
        load_image(np.zeros((2, 2), np.uint8), max_pixels=bad)  # type: ignore[arg-type]


# --- paths -----------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "missing.jpg"
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert "file not found" in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, FaceprintError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, ImageNotFoundError) and isinstance(info.value, FileNotFoundError)


def test_url_is_not_fetched() -> None:
    with pytest.raises(ImageError, match="URLs are not downloaded"):
        load_image("https://example.com/face.jpg")


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        load_image(tmp_path)
    assert "directory" in str(info.value) and str(tmp_path) in str(info.value)


def test_empty_path_string() -> None:
    with pytest.raises(ImageError, match="empty path"):
        load_image("")


def test_input_file_is_never_modified(tmp_path: Path) -> None:
    im = Image.fromarray(photo_like(40, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    im.save(path, "JPEG", exif=exif)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    load_image(path)
    load_image(str(path))
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


# --- pixel modes -----------------------------------------------------------------------------


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 24), (255, 0, 0, 0)).save(path, "JPEG", quality=95)  # cyan
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = load_image(path)
    assert_rgb(out, (24, 32))
    assert np.abs(out[12, 16].astype(int) - (0, 255, 255)).max() <= 3


def test_ycbcr_and_hsv_pil_images() -> None:
    src = Image.new("RGB", (8, 8), (200, 40, 10))
    for mode in ("YCbCr", "HSV"):
        out = load_image(src.convert(mode))
        assert_rgb(out, (8, 8))
        assert np.abs(out[0, 0].astype(int) - (200, 40, 10)).max() <= 3


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_scales_by_257(tmp_path: Path, fmt: str) -> None:
    values = np.arange(256, dtype=np.uint16) * 257  # 257 * k -> k
    extra = np.array([0, 1, 128, 129, 385, 386, 65534, 65535], dtype=np.uint16)
    arr = np.concatenate([values, extra, np.zeros(8, np.uint16)]).reshape(34, 8)
    path = tmp_path / f"grey16.{fmt.lower()}"
    Image.fromarray(arr).save(path, fmt)
    with Image.open(path) as check:
        assert check.mode.startswith("I;16")
    out = load_image(path)
    assert_rgb(out, (34, 8))
    flat = out[..., 0].reshape(-1)
    assert np.array_equal(flat[:256], np.arange(256))
    expected = np.rint(extra / 257).astype(np.uint8)
    assert np.array_equal(flat[256:264], expected)
    assert flat[263] == 255 and flat[262] == 255
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


def test_16bit_rgb_png(tmp_path: Path) -> None:
    k = np.arange(256, dtype=np.uint16)
    rgb16 = np.stack([k * 257, (255 - k) * 257, np.full(256, 65535, np.uint16)], axis=-1)
    rgb16 = rgb16.reshape(16, 16, 3)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    path = write(tmp_path, "rgb16.png", raw_png(16, 16, 16, 2, rows))
    out = load_image(path)
    assert_rgb(out, (16, 16))
    assert np.array_equal(out[..., 0].reshape(-1), np.arange(256))
    assert np.array_equal(out[..., 1].reshape(-1), 255 - np.arange(256))
    assert (out[..., 2] == 255).all()


def test_pil_mode_i_and_f() -> None:
    # "I" holding 16-bit values scales by 1/257, holding 8-bit values passes through.
    i16 = Image.fromarray((np.arange(16, dtype=np.int32) * 257 * 17).reshape(4, 4), mode="I")
    assert np.array_equal(load_image(i16)[..., 0].reshape(-1), np.arange(16) * 17)
    i8 = Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4) * 10, mode="I")
    assert np.array_equal(load_image(i8)[..., 0].reshape(-1), np.arange(16) * 10)
    f = Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), mode="F")
    assert np.array_equal(load_image(f)[..., 0].reshape(-1), np.rint(np.linspace(0, 255, 16)))


def test_rgba_png_composited_on_white(tmp_path: Path) -> None:
    arr = np.zeros((2, 3, 4), np.uint8)
    arr[0, 0] = (10, 20, 30, 255)  # opaque: unchanged
    arr[0, 1] = (10, 20, 30, 0)  # transparent: white
    arr[0, 2] = (0, 0, 0, 128)  # half: mid grey
    arr[1, :] = (200, 100, 0, 255)
    path = tmp_path / "rgba.png"
    Image.fromarray(arr, "RGBA").save(path)
    out = load_image(path)
    assert_rgb(out, (2, 3))
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert tuple(out[0, 2]) == (127, 127, 127)
    assert (out[1] == (200, 100, 0)).all()
    # The RGBA array itself gives exactly the same result.
    assert np.array_equal(load_image(arr), out)


def test_la_png(tmp_path: Path) -> None:
    arr = np.array([[[50, 255], [50, 0]]], np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(arr, "LA").save(path)
    out = load_image(path)
    assert tuple(out[0, 0]) == (50, 50, 50) and tuple(out[0, 1]) == (255, 255, 255)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (4, 2), 0)
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    im.putpixel((1, 0), 1)
    im.putpixel((2, 0), 2)
    path = tmp_path / "pal.png"
    im.save(path, transparency=0)
    with Image.open(path) as check:
        assert check.mode == "P"
    out = load_image(path)
    assert_rgb(out, (2, 4))
    assert tuple(out[0, 0]) == (255, 255, 255)  # index 0 is transparent -> white
    assert tuple(out[0, 1]) == RED and tuple(out[0, 2]) == BLUE


def test_grey_modes(tmp_path: Path) -> None:
    grey = (np.arange(48, dtype=np.uint8) * 5).reshape(6, 8)
    path = tmp_path / "grey.png"
    Image.fromarray(grey, "L").save(path)
    out = load_image(path)
    assert_rgb(out, (6, 8))
    assert all(np.array_equal(out[..., c], grey) for c in range(3))

    bits = np.zeros((5, 7), bool)
    bits[1, 2] = True
    path1 = tmp_path / "bits.png"
    Image.fromarray(bits).convert("1").save(path1)
    out1 = load_image(path1)
    assert set(np.unique(out1).tolist()) == {0, 255}
    assert tuple(out1[1, 2]) == (255, 255, 255) and tuple(out1[0, 0]) == (0, 0, 0)


def test_greyscale_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "grey.jpg"
    Image.fromarray(photo_like(40, 50)[..., 0], "L").save(path, "JPEG")
    out = load_image(path)
    assert_rgb(out, (40, 50))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / f"anim.{fmt.lower()}"
    kwargs: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=50, loop=0, **kwargs)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 3
    out = load_image(path)
    assert_rgb(out, (10, 20))
    assert np.abs(out.astype(int) - RED).max() <= 2


def test_exif_orientation_applied(tmp_path: Path) -> None:
    stored = np.zeros((40, 60, 3), np.uint8)  # 60 wide, 40 tall as stored
    stored[:8, :8] = RED  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "exif6.jpg"
    Image.fromarray(stored).save(path, "JPEG", exif=exif, quality=95)
    out = load_image(path)
    assert_rgb(out, (60, 40))  # displayed: 40 wide, 60 tall
    # Stored top-left ends up at the displayed top-right.
    assert np.abs(out[2, 37].astype(int) - RED).max() < 40
    assert out[2, 2].max() < 40 and out[57, 2].max() < 40 and out[57, 37].max() < 40


def test_one_pixel_png(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(path)
    out = load_image(path)
    assert out.shape == (1, 1, 3) and tuple(out[0, 0]) == (1, 2, 3)


def test_bmp_tiff_ppm(tmp_path: Path) -> None:
    arr = photo_like(12, 18)
    for fmt, ext in (("BMP", "bmp"), ("TIFF", "tif"), ("PPM", "ppm")):
        path = tmp_path / f"img.{ext}"
        Image.fromarray(arr).save(path, fmt)
        assert np.array_equal(load_image(path), arr), fmt


# --- input kinds give identical arrays ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_every_input_kind_identical(tmp_path: Path, fmt: str) -> None:
    im = Image.fromarray(photo_like(30, 50))
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / f"same.{fmt.lower()}"
    im.save(path, fmt, exif=exif)
    data = path.read_bytes()

    reference = load_image(path)
    assert_rgb(reference, (50, 30))  # orientation 8 swaps width and height
    with open(path, "rb") as fh:
        from_file = load_image(fh)
    with Image.open(path) as pil:
        from_pil = load_image(pil)
    variants = {
        "str": load_image(str(path)),
        "bytes": load_image(data),
        "bytearray": load_image(bytearray(data)),
        "memoryview": load_image(memoryview(data)),
        "BytesIO": load_image(io.BytesIO(data)),
        "file": from_file,
        "PIL": from_pil,
        "array": load_image(reference),
    }
    for name, arr in variants.items():
        assert_rgb(arr)
        assert np.array_equal(arr, reference), name
        assert not np.shares_memory(arr, reference), name


def test_file_object_left_open(tmp_path: Path, jpeg_bytes: bytes) -> None:
    path = write(tmp_path, "a.jpg", jpeg_bytes)
    with open(path, "rb") as fh:
        assert_rgb(load_image(fh), (120, 160))
        assert not fh.closed
        fh.seek(0)
        assert fh.read(3) == b"\xff\xd8\xff"
    buf = io.BytesIO(jpeg_bytes)
    load_image(buf)
    assert not buf.closed


def test_file_object_error_leaves_it_open() -> None:
    buf = io.BytesIO(b"plain text, not an image")
    with pytest.raises(UnsupportedImageError):
        load_image(buf)
    assert not buf.closed


def test_text_mode_file_object(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", b"hello")
    with open(path, encoding="utf-8") as fh:
        with pytest.raises(UnsupportedImageError, match="'rb'"):
            load_image(fh)  # type: ignore[arg-type]
        assert not fh.closed


def test_non_seekable_file_object(jpeg_bytes: bytes) -> None:
    class Pipe:
        def __init__(self, data: bytes) -> None:
            self._buf = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._buf.read(min(n, 1000) if n and n > 0 else 1000)

    assert np.array_equal(load_image(Pipe(jpeg_bytes)), load_image(jpeg_bytes))


@pytest.mark.parametrize("bad", [42, 3.5, None, ["a.jpg"], {"path": "a.jpg"}])
def test_unsupported_source_type(bad: object) -> None:
    with pytest.raises(UnsupportedImageError, match="pass a path"):
        load_image(bad)  # type: ignore[arg-type]


# --- numpy arrays ------------------------------------------------------------------------------


def test_array_uint8_rgb_is_copied() -> None:
    arr = photo_like(5, 7)
    before = arr.copy()
    out = load_image(arr)
    assert np.array_equal(out, arr) and not np.shares_memory(out, arr)
    out[:] = 0
    assert np.array_equal(arr, before)


def test_array_non_contiguous_view() -> None:
    arr = photo_like(6, 9)
    bgr_view = arr[:, ::-1, ::-1]
    out = load_image(bgr_view)
    assert_rgb(out, (6, 9))
    assert np.array_equal(out, bgr_view)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)])
def test_array_grey(shape: tuple[int, ...]) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(shape)
    out = load_image(arr)
    assert_rgb(out, (4, 6))
    assert np.array_equal(out[..., 1], arr.reshape(4, 6))


def test_array_bool() -> None:
    arr = np.array([[True, False], [False, True]])
    out = load_image(arr)
    assert out[0, 0].tolist() == [255] * 3 and out[0, 1].tolist() == [0] * 3


def test_array_uint16() -> None:
    arr = np.array([[0, 257, 65535], [128, 129, 32896]], np.uint16)
    before = arr.copy()
    out = load_image(arr)
    assert out[..., 0].tolist() == [[0, 1, 255], [0, 1, 128]]
    assert np.array_equal(arr, before)


def test_array_float() -> None:
    arr = np.array([[0.0, 0.2, 1.0], [0.5, -0.001, 1.004]], np.float64)
    before = arr.copy()
    out = load_image(arr)
    assert out[..., 0].tolist() == [[0, 51, 255], [128, 0, 255]]
    assert np.array_equal(arr, before)
    out32 = load_image(arr.astype(np.float32))
    assert np.array_equal(out32, out)
    assert np.array_equal(load_image(arr.astype(np.float16))[0, :, 0], [0, 51, 255])


def test_array_float_out_of_range() -> None:
    with pytest.raises(ImageDimensionError) as info:
        load_image(np.full((3, 3, 3), 200.0))
    assert "[0, 1]" in str(info.value) and "255" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_array_float_not_finite(bad: float) -> None:
    arr = np.zeros((4, 4, 3), np.float32)
    arr[1, 2, 0] = bad
    with pytest.raises(ImageDimensionError) as info:
        load_image(arr)
    assert "NaN/inf" in str(info.value) and "(4, 4, 3)" in str(info.value)


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 3), (1, 2, 2, 2, 3), (5, 5, 2), (5, 5, 5), (3, 8, 8)])
def test_array_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ImageDimensionError) as info:
        load_image(np.zeros(shape, np.uint8))
    assert str(shape) in str(info.value)


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0), (0, 0, 4)])
def test_array_zero_size(shape: tuple[int, ...]) -> None:
    with pytest.raises(EmptyImageError) as info:
        load_image(np.zeros(shape, np.uint8))
    assert str(shape) in str(info.value) and "no pixels" in str(info.value)


def test_array_other_int_dtypes() -> None:
    arr = np.array([[0, 128, 255]], np.int64)
    assert load_image(arr)[0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ImageDimensionError, match=r"\[0, 1000\]"):
        load_image(np.array([[0, 1000]], np.int32))
    with pytest.raises(ImageDimensionError, match="dtype"):
        load_image(np.array([["a", "b"]]))
    with pytest.raises(ImageDimensionError, match="complex"):
        load_image(np.zeros((2, 2), np.complex64))


def test_array_rgba() -> None:
    arr = np.array([[[10, 20, 30, 255], [10, 20, 30, 0]]], np.uint8)
    before = arr.copy()
    out = load_image(arr)
    assert out.tolist() == [[[10, 20, 30], [255, 255, 255]]]
    assert np.array_equal(arr, before)


# --- PIL images ----------------------------------------------------------------------------------


def test_pil_image_unchanged() -> None:
    im = Image.new("RGBA", (5, 4), (1, 2, 3, 255))
    out = load_image(im)
    assert_rgb(out, (4, 5))
    assert im.mode == "RGBA" and im.size == (5, 4)
    out[:] = 9
    assert im.getpixel((0, 0)) == (1, 2, 3, 255)


# --- helpers: describe_source and read_image_header -----------------------------------------------


def test_describe_source(tmp_path: Path) -> None:
    assert describe_source(tmp_path / "a.jpg") == str(tmp_path / "a.jpg")
    assert describe_source("x/y.png") == "x/y.png"
    assert describe_source(b"1234") == "<bytes: 4>"
    assert describe_source(bytearray(3)) == "<bytearray: 3>"
    assert describe_source(memoryview(b"12")) == "<memoryview: 2>"
    assert describe_source(np.zeros((2, 3, 3), np.uint8)) == "<array (2, 3, 3) uint8>"
    assert describe_source(io.BytesIO()) == "<file object BytesIO>"
    assert describe_source(Image.new("L", (4, 3))) == "<PIL.Image L 4x3>"
    assert describe_source(42) == "<int>"
    path = write(tmp_path, "f.bin", b"x")
    with open(path, "rb") as fh:
        assert describe_source(fh) == f"<file {str(path)!r}>"


def test_read_image_header(jpeg_bytes: bytes, bomb_png: Path) -> None:
    assert read_image_header(jpeg_bytes) == ("JPEG", 160, 120)
    # Only the header is needed.
    assert read_image_header(jpeg_bytes[: len(jpeg_bytes) // 2]) == ("JPEG", 160, 120)
    with pytest.raises(EmptyImageError):
        read_image_header(b"")
    with pytest.raises(UnsupportedImageError, match="text"):
        read_image_header(b"hello there")
    with pytest.raises(ImageTooLargeError):
        read_image_header(bomb_png.read_bytes())


def test_pillow_globals_untouched(tmp_path: Path, jpeg_bytes: bytes) -> None:
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
    load_image(jpeg_bytes)
    with pytest.raises(TruncatedImageError):
        load_image(jpeg_bytes[:-500])
    assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS) == before


# --- real photographs ----------------------------------------------------------------------


def _real(rel: str) -> Path:
    path = DATA_DIR / rel
    if not path.is_file():
        pytest.skip(f"test data not available: {path} (set FACEPRINT_TEST_DATA)")
    return path


def test_real_greyscale_png() -> None:
    path = _real("misc_faces/skimage_camera_cameraman.png")
    out = load_image(path)
    assert_rgb(out, (512, 512))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert out.std() > 20  # a real picture, not a flat fill
    assert np.array_equal(load_image(path.read_bytes()), out)


def test_real_rgb_png_and_jpeg() -> None:
    png = _real("misc_faces/insightface_Tom_Hanks_54745.png")
    assert_rgb(load_image(png), (112, 112))
    jpg = _real("misc_faces/matplotlib_grace_hopper.jpg")
    out = load_image(jpg)
    assert_rgb(out, (600, 512))
    with Image.open(jpg) as im:
        assert np.array_equal(out, np.asarray(im.convert("RGB")))


def test_real_lfw_jpegs() -> None:
    root = DATA_DIR / "lfw_view1"
    if not root.is_dir():
        pytest.skip(f"test data not available: {root} (set FACEPRINT_TEST_DATA)")
    paths = sorted(root.glob("*/*.jpg"))[:10]
    assert paths
    for path in paths:
        out = load_image(path)
        assert_rgb(out, (250, 250))
        with open(path, "rb") as fh:
            assert np.array_equal(load_image(fh), out)


def test_real_photo_truncated_copy(tmp_path: Path) -> None:
    data = _real("misc_faces/matplotlib_grace_hopper.jpg").read_bytes()
    path = write(tmp_path, "partial_download.jpg", data[: len(data) * 2 // 3])
    with pytest.raises(TruncatedImageError) as info:
        load_image(path)
    assert "partial_download.jpg" in str(info.value)
