"""Merge per-frame detections into timeline findings.

The rule (one finding = one uninterrupted run of one kind of finding in one place):

1. Detections are grouped by their key ``(category, location)``, compared case- and
   whitespace-insensitively (``"Polyp"`` / ``" polyp "`` are one key; no location is a key
   of its own).
2. Frames are visited in time order (non-decreasing ``timestamp_ms``; equal times are fine,
   going back in time is an error). A run of a key continues while every analysed frame
   has that key *and* consecutive frames of the run are at most ``max_gap_ms`` apart.
3. A run ends at the first analysed frame without the key (the model looked and did not
   see it), or when the next frame with the key comes more than ``max_gap_ms`` after the
   run's last frame. Frames that were never analysed (dropped by the quality gate) are not
   in the input, so they break a run only through the gap rule.
4. A finding has ``start_ms`` / ``end_ms`` = times of its first / last frame, the highest
   risk and the highest confidence seen in the run, and a key frame: the frame holding the
   run's most confident detection (earliest on ties). ``key_detection`` is that detection
   object itself, so size, label, description and next step come from the best view.
   Several detections with one key in one frame (two polyps in the sigmoid) join one run.

Detections may be any object with attributes -- or mappings with keys -- ``category``,
``location``, ``risk`` and ``confidence`` (e.g. the analyzer's pydantic findings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

DEFAULT_MAX_GAP_MS = 5000  # five one-second samples: tolerates a few gated-out frames

# Risk words the analyzer may use, lowest first. Synonyms share a rank.
RISK_LADDER: dict[str, int] = {
    "none": 0,
    "minimal": 1,
    "low": 1,
    "medium": 2,
    "moderate": 2,
    "intermediate": 2,
    "high": 3,
    "critical": 4,
    "urgent": 4,
}


@dataclass(frozen=True)
class Detection:
    """A minimal detection, for callers without their own type."""

    category: str
    location: str | None = None
    risk: Any = None
    confidence: float | None = None
    size_mm: float | None = None
    label: str | None = None
    description: str | None = None
    suggested_next_step: str | None = None


@dataclass(frozen=True)
class FrameDetections:
    timestamp_ms: int
    frame_id: Any
    detections: Sequence[Any] = ()


@dataclass(frozen=True)
class TimelineFinding:
    category: str
    location: str | None
    start_ms: int
    end_ms: int
    risk: Any  # the highest risk in the run, as the detections spell it
    confidence: float | None  # the highest confidence in the run
    key_frame_id: Any
    key_timestamp_ms: int
    key_detection: Any
    frame_ids: tuple = ()
    detection_count: int = 0

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def default_risk_rank(risk: Any) -> float:
    """Numbers rank as themselves; words by :data:`RISK_LADDER`; enums by their value."""
    if risk is None:
        return float("-inf")
    risk = getattr(risk, "value", risk)
    if isinstance(risk, Real) and not isinstance(risk, bool):
        return float(risk)
    if isinstance(risk, str):
        word = risk.strip().casefold()
        if word in RISK_LADDER:
            return float(RISK_LADDER[word])
        raise ValueError(f"unknown risk {risk!r}; known: {', '.join(RISK_LADDER)}")
    raise TypeError(f"cannot rank risk of type {type(risk).__name__}")


def _norm(text: Any) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split()).casefold()
    return text or None


def _confidence_rank(value: Any) -> float:
    return float("-inf") if value is None else float(value)


@dataclass
class _Run:
    start_ms: int
    end_ms: int
    best_risk: Any = None
    best_risk_rank: float = float("-inf")
    best_conf: float | None = None
    key: tuple | None = None  # (confidence rank, frame_id, timestamp, detection)
    frame_ids: list = field(default_factory=list)
    count: int = 0

    def add(self, ts: int, frame_id: Any, dets: list, risk_rank: Callable[[Any], float]) -> None:
        self.end_ms = ts
        if not self.frame_ids or self.frame_ids[-1] != frame_id:
            self.frame_ids.append(frame_id)
        for det in dets:
            self.count += 1
            risk = field_of(det, "risk")
            rank = risk_rank(risk)
            if self.best_risk is None or rank > self.best_risk_rank:
                self.best_risk, self.best_risk_rank = risk, rank
            conf = field_of(det, "confidence")
            if conf is not None and (self.best_conf is None or conf > self.best_conf):
                self.best_conf = conf
            # strictly greater: the earliest detection wins ties
            if self.key is None or _confidence_rank(conf) > self.key[0]:
                self.key = (_confidence_rank(conf), frame_id, ts, det)

    def finding(self) -> TimelineFinding:
        _, frame_id, ts, det = self.key
        return TimelineFinding(
            category=field_of(det, "category"),
            location=field_of(det, "location"),
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            risk=self.best_risk,
            confidence=self.best_conf,
            key_frame_id=frame_id,
            key_timestamp_ms=ts,
            key_detection=det,
            frame_ids=tuple(self.frame_ids),
            detection_count=self.count,
        )


def merge_detections(
    frames: Iterable[FrameDetections | tuple[int, Any, Sequence[Any]]],
    *,
    max_gap_ms: int = DEFAULT_MAX_GAP_MS,
    risk_rank: Callable[[Any], float] = default_risk_rank,
) -> list[TimelineFinding]:
    """Apply the module's rule; findings come back ordered by start time, then key."""
    if max_gap_ms < 0:
        raise ValueError("max_gap_ms must be >= 0")
    open_runs: dict[tuple, _Run] = {}
    done: list[tuple[tuple, _Run]] = []
    prev_ts: int | None = None
    for item in frames:
        if isinstance(item, tuple):
            ts, frame_id, dets = item
        else:
            ts, frame_id, dets = item.timestamp_ms, item.frame_id, item.detections
        if prev_ts is not None and ts < prev_ts:
            raise ValueError(f"frames must be in time order: {ts} ms comes after {prev_ts} ms")
        prev_ts = ts

        present: dict[tuple, list] = {}
        for det in dets or ():
            key = (_norm(field_of(det, "category")), _norm(field_of(det, "location")))
            present.setdefault(key, []).append(det)

        for key in [k for k in open_runs if k not in present]:
            done.append((key, open_runs.pop(key)))  # looked, not seen: the run ends
        for key, group in present.items():
            run = open_runs.get(key)
            if run is not None and ts - run.end_ms > max_gap_ms:
                done.append((key, open_runs.pop(key)))
                run = None
            if run is None:
                run = open_runs[key] = _Run(start_ms=ts, end_ms=ts)
            run.add(ts, frame_id, group, risk_rank)
    done.extend(open_runs.items())
    done.sort(key=lambda kr: (kr[1].start_ms, kr[0][0] or "", kr[0][1] or ""))
    return [run.finding() for _, run in done]
