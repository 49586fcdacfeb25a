"""Withdrawal time from the timeline: "cecum reached" to "scope out".

Both marks must refer to the same clock (the same recording, or both to the live stream);
otherwise, or when one is missing or out of order, there is no withdrawal time and the
reason says what to fix. Pure: takes marks (anything with ``kind``, ``time_ms``,
``video_id``), so the report, the exports and the QA metrics compute it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from medvision.timefmt import format_duration  # noqa: F401 (re-exported: reporting's callers use it)

from .vocabulary import WITHDRAWAL_END_MARK, WITHDRAWAL_START_MARK, WITHDRAWAL_TARGET_S


@dataclass(frozen=True)
class Withdrawal:
    seconds: float | None
    problem: str = ""  # why there is no time, for a person

    @property
    def meets_target(self) -> bool | None:
        return None if self.seconds is None else self.seconds >= WITHDRAWAL_TARGET_S


def withdrawal_from_marks(marks: Iterable) -> Withdrawal:
    by_kind = {mark.kind: mark for mark in marks}
    start, end = by_kind.get(WITHDRAWAL_START_MARK), by_kind.get(WITHDRAWAL_END_MARK)
    if start is None and end is None:
        return Withdrawal(None, "Mark 'Cecum reached' and 'Scope out' on the timeline.")
    if start is None:
        return Withdrawal(None, "Mark 'Cecum reached' on the timeline.")
    if end is None:
        return Withdrawal(None, "Mark 'Scope out' on the timeline.")
    if start.video_id != end.video_id:
        return Withdrawal(None, "'Cecum reached' and 'Scope out' are marked on different recordings; "
                                "mark both on the same one.")
    if end.time_ms <= start.time_ms:
        return Withdrawal(None, "'Scope out' must come after 'Cecum reached'.")
    return Withdrawal((end.time_ms - start.time_ms) / 1000.0)
