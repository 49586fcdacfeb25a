"""Small, shared presentation helpers for exported documents."""

from __future__ import annotations

from datetime import UTC, datetime

from analysis.engine import humanize


def media_time(ms: int | None) -> str:
    """Media offset as ``hh:mm:ss.mmm`` (hours not wrapped: a 30-hour recording says 30)."""
    if ms is None:
        return ""
    seconds, millis = divmod(int(ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a trailing Z (what EHR interfaces parse most reliably)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def compact_utc(value: datetime) -> str:
    """``20250102T030405Z``: a timestamp that is safe in a file name."""
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def label_of(value: str) -> str:
    return humanize(value) if value else ""


def frame_file_name(frame) -> str:
    """A key frame's file in the bundle: its media time first, so the folder sorts by time."""
    return f"{frame.timestamp_ms:09d}ms_{frame.pk}.jpg"
