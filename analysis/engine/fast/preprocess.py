"""Frame preprocessing on the model's device: uint8 RGB -> resize -> rescale -> normalise.

It reproduces Gemma 3's Hugging Face image processor bit for bit (PIL bilinear resize of
the uint8 image, ``x * (1/255)`` in float64 then float32, ``(x - mean) / std`` in
float32), so the fast engine sees exactly the pixels the reference path sees, without PIL
and without a round trip through host memory per frame.

PIL's bilinear resize is separable and works in fixed point: per output pixel, integer
weights with 22 fractional bits (``PRECISION_BITS`` in Pillow's Resample.c), a horizontal
pass rounded to uint8, then a vertical pass rounded to uint8. Here each pass is one matrix
product with a (out x in) weight matrix built the same way. In float64 the products
(<= 255 * 2^22) and their sums are integers far below 2^53, so the matmul is exact in any
summation order - on a CPU or a GPU - and the rounding afterwards is Pillow's.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch

PRECISION_BITS = 32 - 8 - 2  # Pillow: 8 bits per channel, 2 for overflow headroom


@lru_cache(maxsize=64)
def _weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point bilinear weights as a dense (out_size, in_size) float64 matrix
    of integers (precompute_coeffs + normalize_coeffs_8bpc, with box = the whole image)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # bilinear filter support is 1
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        weights = []
        total = 0.0
        for x in range(xmax):
            w = max(0.0, 1.0 - abs((x + xmin - center + 0.5) * ss))
            weights.append(w)
            total += w
        for x, w in enumerate(weights):
            w = w / total if total != 0.0 else w
            fixed = math.trunc(0.5 + w * (1 << PRECISION_BITS)) if w >= 0 else math.trunc(-0.5 + w * (1 << PRECISION_BITS))
            matrix[xx, xmin + x] = fixed
    return matrix


def _round_to_uint8(values: torch.Tensor) -> torch.Tensor:
    # Pillow adds half a unit before summing and shifts right afterwards: floor((s + h) / 2^22).
    return torch.floor((values + float(1 << (PRECISION_BITS - 1))) / float(1 << PRECISION_BITS)).clamp_(0, 255)


class ImagePreprocessor:
    """Gemma 3 pixel values for a batch of frames, computed on ``device``."""

    def __init__(self, *, size: int, mean: tuple[float, ...], std: tuple[float, ...], rescale: float,
                 device: torch.device, dtype: torch.dtype):
        self.size = size
        self.device = device
        self.dtype = dtype
        self.rescale = rescale
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._matrices: dict[tuple[int, int], torch.Tensor] = {}

    @classmethod
    def for_processor(cls, image_processor: Any, device: torch.device, dtype: torch.dtype) -> ImagePreprocessor:
        """Read size, rescale factor, mean and std from a Gemma 3 image processor, refusing
        settings this class does not reproduce (so the fast path never silently differs)."""
        size = getattr(image_processor, "size", None) or {}
        height, width = size.get("height"), size.get("width")
        resample = getattr(image_processor, "resample", 2)
        unsupported = []
        if not height or height != width:
            unsupported.append(f"size {size!r} (a square height/width is expected)")
        if int(getattr(resample, "value", resample)) != 2:
            unsupported.append(f"resample {resample!r} (bilinear is expected)")
        if getattr(image_processor, "do_pan_and_scan", False):
            unsupported.append("pan and scan")
        if not (getattr(image_processor, "do_resize", True) and getattr(image_processor, "do_rescale", True)
                and getattr(image_processor, "do_normalize", True)):
            unsupported.append("resize, rescale and normalize must all be on")
        if unsupported:
            raise ValueError("GPU preprocessing does not reproduce this image processor: " + "; ".join(unsupported))
        return cls(size=int(height), mean=tuple(image_processor.image_mean), std=tuple(image_processor.image_std),
                   rescale=float(image_processor.rescale_factor), device=device, dtype=dtype)

    def _matrix(self, in_size: int) -> torch.Tensor:
        key = (in_size, self.size)
        matrix = self._matrices.get(key)
        if matrix is None:
            matrix = torch.from_numpy(_weights(in_size, self.size)).to(self.device)
            if len(self._matrices) > 32:  # capture sizes are few; bound the memory anyway
                self._matrices.clear()
            self._matrices[key] = matrix
        return matrix

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, 3, size, size) float64 holding Pillow's uint8 result."""
        pixels = images.permute(0, 3, 1, 2).to(torch.float64)  # N, 3, H, W
        height, width = pixels.shape[-2:]
        if width != self.size:
            pixels = _round_to_uint8(pixels @ self._matrix(width).T)
        if height != self.size:
            pixels = _round_to_uint8(self._matrix(height) @ pixels)
        return pixels

    def __call__(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Pixel values (N, 3, size, size) in the model dtype, frames in order. Frames of
        the same size are resized together."""
        out = torch.empty((len(frames), 3, self.size, self.size), dtype=self.dtype, device=self.device)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(index)
        for indices in by_shape.values():
            batch = np.stack([frames[i] for i in indices])
            uint8 = torch.from_numpy(batch)
            if self.device.type == "cuda":
                uint8 = uint8.pin_memory().to(self.device, non_blocking=True)
            resized = self.resize(uint8)
            # The HF processor: (x.astype(float64) * scale).astype(float32), then
            # (x - mean) / std in float32.
            scaled = (resized * self.rescale).to(torch.float32)
            normalised = (scaled - self.mean) / self.std
            out[torch.tensor(indices, device=self.device)] = normalised.to(self.dtype)
        return out
