"""Frame quality: is this frame worth sending to the model?

Everything is computed on 8-bit luma (ITU-R BT.601 weights, 0-255), numpy only:

* ``blur_score``: variance of the 4-neighbour Laplacian. Sharp detail gives large second
  derivatives; defocus, motion smear and a fogged lens flatten them. Pixels next to the
  scope's black mask are left out (see ``mask_luma``), because the circular edge of the
  endoscope image is the sharpest thing in every frame and would make blurry frames pass.
* ``mean_luma``, ``dark_fraction`` (luma < ``dark_level``), ``bright_fraction``
  (luma > ``bright_level``).

The score depends on the frame size (the same scene shrunk to half size has sharper
pixels), so gate frames at one fixed size -- the analyzer's input size -- and calibrate the
threshold there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class QualityThresholds:
    """Verdict thresholds. Defaults aim to drop only frames nobody could read, not to rank.

    They are reasoned starting points, not fitted to real endoscopy recordings (none were
    available when they were chosen): recalibrate on real frames at the analyzer's input size.

    * ``min_blur_score = 40``: the usual cut-off for Laplacian variance is ~100, set for
      everyday photos full of edges. Mucosa is smooth and low in texture, so a sharp frame
      can score well under 100; 40 errs on keeping, because a blurry frame costs one model
      call while a wrongly dropped sharp frame may hide a lesion. (On the synthetic benchmark
      video at 896x504, sharp frames score about 90-280 and the gaussian-blurred section
      (sigma 12) below 2; see benchmarks/README.md.)
    * ``dark_level = 30`` / ``max_dark_fraction = 0.85``: the scope's black surround and the
      dark lumen already cover a large part of a good frame (30-50 % is common), so only a
      frame that is almost all dark (camera in fluid or against the wall, light off) is too
      dark.
    * ``min_mean_luma = 20``: uniformly dim frames whose pixels sit just above ``dark_level``.
    * ``bright_level = 245`` / ``max_bright_fraction = 0.40``: specular highlights are normal
      and small (a few %); 40 % clipped is a white-out (lens on the mucosa, light too strong).
    * ``max_mean_luma = 235``: uniformly washed-out frames.
    * ``mask_luma = 12``: pixels at or below this are the mask (true black), not tissue.
      None disables the exclusion.
    """

    min_blur_score: float = 40.0
    dark_level: int = 30
    max_dark_fraction: float = 0.85
    min_mean_luma: float = 20.0
    bright_level: int = 245
    max_bright_fraction: float = 0.40
    max_mean_luma: float = 235.0
    mask_luma: int | None = 12


@dataclass(frozen=True)
class QualityReport:
    blur_score: float
    mean_luma: float
    dark_fraction: float
    bright_fraction: float
    verdict: str  # "ok" | "blurry" | "too_dark" | "blown_out"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_THRESHOLDS = QualityThresholds()


def luma(image: np.ndarray) -> np.ndarray:
    """float32 (H, W) luma of an (H, W, 3) RGB or (H, W) gray uint8 image."""
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    rgb = image[..., :3].astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def laplacian_variance(gray: np.ndarray, *, mask_luma: int | None = None) -> float:
    """Variance of the 4-neighbour Laplacian over the interior (and non-mask) pixels."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    center = gray[1:-1, 1:-1]
    up, down = gray[:-2, 1:-1], gray[2:, 1:-1]
    left, right = gray[1:-1, :-2], gray[1:-1, 2:]
    lap = up + down + left + right - 4.0 * center
    if mask_luma is None:
        return float(lap.var())
    # Keep a response only if none of its five taps touches the mask.
    darkest = np.minimum(np.minimum(np.minimum(up, down), np.minimum(left, right)), center)
    values = lap[darkest > mask_luma]
    return float(values.var()) if values.size else 0.0


def assess_quality(image: np.ndarray, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> QualityReport:
    """Measure ``image`` and give a verdict. Exposure is judged before sharpness: a black
    frame also has no detail, and "too dark" is the more useful thing to say about it."""
    gray = luma(image)
    n = gray.size
    mean = float(gray.mean()) if n else 0.0
    dark = float(np.count_nonzero(gray < thresholds.dark_level)) / n if n else 1.0
    bright = float(np.count_nonzero(gray > thresholds.bright_level)) / n if n else 0.0
    blur = laplacian_variance(gray, mask_luma=thresholds.mask_luma)

    if dark >= thresholds.max_dark_fraction or mean < thresholds.min_mean_luma:
        verdict = "too_dark"
    elif bright >= thresholds.max_bright_fraction or mean > thresholds.max_mean_luma:
        verdict = "blown_out"
    elif blur < thresholds.min_blur_score:
        verdict = "blurry"
    else:
        verdict = "ok"
    return QualityReport(blur_score=blur, mean_luma=mean, dark_fraction=dark, bright_fraction=bright, verdict=verdict)
