"""JPEG encoding of frames kept as evidence, and guarded decoding of JPEGs from clients."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from PIL import Image

# A live client sends camera frames; 40 megapixels is far beyond any scope camera and well
# below the size at which a small "decompression bomb" JPEG could exhaust a worker's memory.
DEFAULT_MAX_PIXELS = 40_000_000


class InvalidImage(ValueError):
    """The bytes are not a decodable JPEG (or are too large); the message says which."""


def encode_jpeg(image: np.ndarray, quality: int = 85, max_side: int | None = None) -> bytes:
    """Encode an (H, W, 3) uint8 RGB array (or (H, W) gray) as baseline JPEG.

    ``quality`` 85 keeps mucosal texture visibly intact at about a tenth of the PNG size.
    ``max_side`` shrinks (never enlarges) so the longer side is at most that many pixels.
    """
    if not 1 <= quality <= 95:
        raise ValueError("quality must be in 1..95 (Pillow advises against more)")
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 array, got {arr.dtype} {arr.shape}")
    pil = Image.fromarray(arr)
    if max_side is not None:
        if max_side < 1:
            raise ValueError("max_side must be >= 1")
        if max(pil.size) > max_side:
            scale = max_side / max(pil.size)
            size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
            pil = pil.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@contextlib.contextmanager
def _opened_jpeg(data: bytes, max_pixels: int):
    """The checks both readers share: a JPEG by its bytes and by Pillow, and not too many
    pixels (read from the header, before any pixel is decoded); Pillow's own errors on bad
    data become InvalidImage."""
    if not data:
        raise InvalidImage("empty image data")
    if data[:3] != b"\xff\xd8\xff":
        raise InvalidImage("not a JPEG (it does not start with a JPEG SOI marker)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                raise InvalidImage(f"not a JPEG (Pillow sees {img.format})")
            if img.width * img.height > max_pixels:
                raise InvalidImage(f"image is {img.width}x{img.height}; at most {max_pixels} pixels are accepted")
            yield img
    except InvalidImage:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on bad data
        raise InvalidImage(f"the JPEG could not be decoded: {exc}") from exc


def decode_jpeg(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode JPEG bytes to an (H, W, 3) uint8 RGB array, refusing non-JPEGs and huge images."""
    with _opened_jpeg(data, max_pixels) as img:
        return np.asarray(img.convert("RGB"))


def check_jpeg(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Validate JPEG bytes as ``decode_jpeg`` does and return (width, height), decoding at
    1/8 scale: libjpeg still reads every byte of the entropy-coded data (a truncated or
    corrupt stream fails just the same) but skips most of the pixel work, which is what a
    web process receiving many live frames a second pays for. The model's worker decodes
    the stored frame in full."""
    with _opened_jpeg(data, max_pixels) as img:
        width, height = img.size
        img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        img.load()
        return width, height
