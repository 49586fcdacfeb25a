"""The events a session's open pages receive, one type per kind, and the one way to publish them.

Every event reaches the browser as the same JSON as before these types existed (the
WebSocket protocol is in the README): ``as_message()`` is that JSON. Producers build the
type, never the dict, so a field cannot be misspelt in one of the places that send it, and
``publish_after_commit`` makes sure a page never hears of a row that was rolled back.

Kinds: ``finding`` (a finding was created or changed; the finding JSON of
``analysis.serializers.finding_event``), ``frame`` (a frame's analysis state), ``progress``
(a recording's processing stage), ``playback`` (a recording's playable copy: its state,
progress and the reason it failed), ``summary`` (a recording's summary), ``status`` (the
session's status changed, with the reason when it failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from django.db import transaction

from . import broadcast


class SessionEvent:
    kind: ClassVar[str]

    def as_message(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class FindingChanged(SessionEvent):
    finding: dict
    kind: ClassVar[str] = "finding"

    def as_message(self) -> dict:
        return {"type": self.kind, "finding": self.finding}


@dataclass(frozen=True)
class FrameChanged(SessionEvent):
    frame: dict
    kind: ClassVar[str] = "frame"

    def as_message(self) -> dict:
        return {"type": self.kind, "frame": self.frame}


@dataclass(frozen=True)
class RecordingProgress(SessionEvent):
    """``detail``: the stage's counters (sampled/kept while sampling, done/total while
    analysing, or the error), flattened into the event as the pages read them."""

    video: str
    stage: str
    progress: float
    detail: dict = field(default_factory=dict)
    kind: ClassVar[str] = "progress"

    def as_message(self) -> dict:
        return {"type": self.kind, "video": self.video, "stage": self.stage,
                "progress": round(self.progress, 4), **self.detail}


@dataclass(frozen=True)
class PlaybackProgress(SessionEvent):
    """A recording's browser-playable copy: ``state`` is a ``PlaybackState`` value
    (not_needed, pending, making, ready, failed), ``progress`` 0..1, ``error`` why it failed."""

    video: str
    state: str
    progress: float
    error: str = ""
    kind: ClassVar[str] = "playback"

    def as_message(self) -> dict:
        return {"type": self.kind, "video": self.video, "state": self.state,
                "progress": round(self.progress, 4), "error": self.error}


@dataclass(frozen=True)
class RecordingSummary(SessionEvent):
    video: str
    summary: dict
    kind: ClassVar[str] = "summary"

    def as_message(self) -> dict:
        return {"type": self.kind, "video": self.video, "summary": self.summary}


@dataclass(frozen=True)
class StatusChanged(SessionEvent):
    status: str
    message: str | None = None
    kind: ClassVar[str] = "status"

    def as_message(self) -> dict:
        message = {"type": self.kind, "status": self.status}
        if self.message is not None:
            message["message"] = self.message
        return message


def publish(session_id, *events: SessionEvent) -> None:
    """Send now (outside a transaction, or for state that is already committed)."""
    for event in events:
        broadcast.broadcast(session_id, event.as_message())


def publish_after_commit(session_id, *events: SessionEvent) -> None:
    """Send once the surrounding transaction has committed (at once outside one)."""
    messages = [event.as_message() for event in events]
    transaction.on_commit(lambda: [broadcast.broadcast(session_id, m) for m in messages])


async def apublish(session_id, *events: SessionEvent) -> None:
    for event in events:
        await broadcast.abroadcast(session_id, event.as_message())
