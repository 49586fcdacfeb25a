"""Synthetic pictures for the quality/dedup/gate tests."""

import numpy as np
from PIL import Image, ImageFilter


def checkerboard(size=256, square=8, low=40, high=215) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    board = np.where(((yy // square) + (xx // square)) % 2 == 0, low, high).astype(np.uint8)
    return np.dstack([board] * 3)


def blurred(image: np.ndarray, radius: float = 4) -> np.ndarray:
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def solid(value, size=128) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def scope_mask(image: np.ndarray, radius_fraction=0.45) -> np.ndarray:
    """Black everywhere outside a centred disc, as an endoscope image is framed."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    outside = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (radius_fraction * min(h, w)) ** 2
    out = image.copy()
    out[outside] = 0
    return out


def textured_scene(seed: int, size=256) -> np.ndarray:
    """Smooth random blobs plus fine texture: sharp, and different for each seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 215, size=(8, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
    fine = rng.integers(-25, 26, size=(size, size, 1), dtype=np.int16)
    return np.clip(base + fine, 0, 255).astype(np.uint8)


def with_noise(image: np.ndarray, amplitude=3, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-amplitude, amplitude + 1, size=image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
