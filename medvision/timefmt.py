"""How people read media times and durations: m:ss (h:mm:ss past an hour), never raw ms.

Shared by every app (the session page, reports, exports, QA metrics, error messages), so it
lives in the base package.
"""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """``372.4`` -> ``"6:12"`` (m:ss); hours as h:mm:ss; ``None`` -> ``""``."""
    if seconds is None:
        return ""
    total = int(math.floor(seconds + 0.5))  # half up (Python's round() would make 2.5 -> 2)
    sign = "-" if total < 0 else ""
    hours, rest = divmod(abs(total), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def format_ms(ms: int | float | None) -> str:
    """A media time in milliseconds as m:ss, the second it falls in (as a player shows it:
    7.9 s is 0:07)."""
    return "" if ms is None else format_duration(ms // 1000)
