"""Frame images: accept numpy arrays or PIL images, hand PIL RGB images to backends."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image


def to_pil_rgb(image: Any) -> Image.Image:
    """An RGB PIL image from an HxWx3 uint8 array (RGB order) or any PIL image.

    Raises ValueError with the offending shape/dtype, so that a caller feeding BGR video
    decoder output or a grayscale array learns what to fix.
    """
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"Frame image must be an HxWx3 RGB array; got shape {image.shape}."
            )
        if image.dtype != np.uint8:
            raise ValueError(f"Frame image must be uint8; got {image.dtype}.")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("Frame image is empty (zero height or width).")
        return Image.fromarray(np.ascontiguousarray(image))
    raise ValueError(
        f"Frame image must be a numpy array or a PIL image; got {type(image).__name__}."
    )


def to_jpeg_data_url(image: Any, quality: int = 90) -> str:
    """``data:image/jpeg;base64,...`` for OpenAI-style image_url content parts."""
    buffer = io.BytesIO()
    to_pil_rgb(image).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
