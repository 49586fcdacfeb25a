"""Quality gate + near-duplicate filter between the sampler and the analyzer.

Order per frame: quality first (a bad frame is dropped for its quality, whatever it looks
like), then the duplicate check against recently *kept* frames. Every sampled frame is
counted exactly once: ``sampled == kept + blurry + too_dark + blown_out + duplicate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Self

import numpy as np

from .dedup import NearDuplicateFilter
from .quality import DEFAULT_THRESHOLDS, QualityReport, QualityThresholds, assess_quality
from .sampler import SampledFrame

DROP_REASONS = ("blurry", "too_dark", "blown_out", "duplicate")


@dataclass
class GateCounts:
    sampled: int = 0
    kept: int = 0
    blurry: int = 0
    too_dark: int = 0
    blown_out: int = 0
    duplicate: int = 0

    @property
    def dropped(self) -> int:
        return self.blurry + self.too_dark + self.blown_out + self.duplicate

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class GatedFrame:
    frame: SampledFrame
    quality: QualityReport
    phash: str  # hex perceptual hash (store it with the Frame)
    nearest_distance: int | None  # Hamming distance to the closest recently kept frame

    @property
    def timestamp_ms(self) -> int:
        return self.frame.timestamp_ms

    @property
    def image(self) -> np.ndarray:
        return self.frame.image

    @property
    def reason(self) -> str:
        return self.frame.reason


class FrameGate(Iterator[GatedFrame]):
    """Iterator of the frames that pass; ``counts`` is up to date after each step.

    ``close()`` (or leaving a ``with`` block) also closes the upstream iterator when it has
    a ``close`` method, so stopping here stops ffmpeg too.
    """

    def __init__(
        self,
        frames: Iterable[SampledFrame],
        thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
        dedup: NearDuplicateFilter | None = None,
        *,
        counts: GateCounts | None = None,
        on_drop: Callable[[SampledFrame, str, QualityReport], None] | None = None,
    ) -> None:
        self._source = frames
        self._frames = iter(frames)
        self.thresholds = thresholds
        self.dedup = dedup
        self.counts = counts if counts is not None else GateCounts()
        self._on_drop = on_drop

    def __iter__(self) -> FrameGate:
        return self

    def __next__(self) -> GatedFrame:
        for frame in self._frames:
            self.counts.sampled += 1
            report = assess_quality(frame.image, self.thresholds)
            if not report.ok:
                self._drop(frame, report.verdict, report)
                continue
            if self.dedup is None:
                phash, distance = str(NearDuplicateFilter.hash_image(frame.image)), None
            else:
                is_dup, phash, distance = self.dedup.check(frame.image)
                if is_dup:
                    self._drop(frame, "duplicate", report)
                    continue
                self.dedup.keep(phash)
            self.counts.kept += 1
            return GatedFrame(frame=frame, quality=report, phash=phash, nearest_distance=distance)
        raise StopIteration

    def _drop(self, frame: SampledFrame, reason: str, report: QualityReport) -> None:
        setattr(self.counts, reason, getattr(self.counts, reason) + 1)
        if self._on_drop is not None:
            self._on_drop(frame, reason, report)

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def gate_frames(
    frames: Iterable[SampledFrame],
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    dedup: NearDuplicateFilter | None = None,
    *,
    counts: GateCounts | None = None,
    on_drop: Callable[[SampledFrame, str, QualityReport], None] | None = None,
) -> FrameGate:
    """Yield the frames worth analysing; drops are tallied in ``.counts`` (or ``counts``).

    ``dedup=None`` disables duplicate dropping (every good frame is kept, hashes are still
    computed for storage). ``on_drop(frame, reason, report)`` sees each dropped frame.
    """
    return FrameGate(frames, thresholds, dedup, counts=counts, on_drop=on_drop)
