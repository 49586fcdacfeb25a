"""The voice socket's protocol with the browser, as pure functions: no socket, no database.

Browser -> relay: what may be sent, checked before anything reaches the service. The relay
answers a ``ProtocolError`` with ``{"type": "error", "code", "message", "fatal": false}``
and the socket stays open. Relay -> browser: the service's events the page sees, renamed
(``to_browser``). The messages are listed in ``voice.consumers`` and the README
("Voice copilot").
"""

from __future__ import annotations

import math

from medvision import safe_json
from medvision.errors import RefusedInput
from medvision.rate_limit import TokenBucket

MESSAGE_TYPES = ("ptt.start", "ptt.stop", "mode", "playback.truncate", "text")
MODES = ("vad", "ptt")
TEXT_MAX_CHARS = 2000
ITEM_ID_MAX_CHARS = 64
BYTES_PER_MS = 48  # PCM16 24 kHz mono: 24 samples x 2 bytes
AUDIO_BYTES_PER_S = BYTES_PER_MS * 1000

UNSUPPORTED = (
    "Unsupported message. Send audio as binary PCM16 24 kHz mono, or JSON of type "
    "ptt.start, ptt.stop, mode, playback.truncate or text."
)
AUDIO_TOO_FAST = (
    "Audio is arriving faster than real time; the excess was dropped. Send microphone audio as it is captured."
)
NOT_READY = "The voice copilot is still connecting; try again in a moment."


class ProtocolError(RefusedInput):
    """A browser message the relay refuses, with the error code the panel understands."""


def error_event(code: str, message: str, *, fatal: bool = False) -> dict:
    return {"type": "error", "code": code, "message": message, "fatal": fatal}


# --- browser -> relay ----------------------------------------------------------------------


def parse_message(text_data: str | None) -> dict:
    """The JSON message, if it is one of ``MESSAGE_TYPES``; anything else is unsupported,
    so a page (or anyone holding the cookie) cannot send the service its own events."""
    try:
        message = safe_json.loads(text_data or "")
    except ValueError:
        message = None
    kind = message.get("type") if isinstance(message, dict) else None
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise ProtocolError("unsupported", UNSUPPORTED)
    return message


def check_audio_chunk(chunk: bytes, limit: int) -> None:
    if len(chunk) > limit:
        raise ProtocolError("audio_too_large", f"Audio messages may be at most {limit} bytes; this one had {len(chunk)}.")
    if len(chunk) % 2:
        raise ProtocolError("bad_audio", "Audio must be 16-bit PCM: an even number of bytes.")


def parse_mode(message: dict) -> str:
    mode = message.get("mode")
    if mode not in MODES:
        raise ProtocolError("bad_message", 'mode must be "vad" or "ptt".')
    return mode


def parse_truncate(message: dict) -> tuple[str, float]:
    """(item id, ms played) of a barge-in; whether the item was played is ``Playback``'s
    to say. NaN is refused here: JSON parsing admits it, every comparison with it is
    false, and it would reach ``int()`` as a crash instead of an answer."""
    item_id, end_ms = message.get("item_id"), message.get("audio_end_ms")
    if not isinstance(item_id, str) or not item_id or len(item_id) > ITEM_ID_MAX_CHARS:
        raise ProtocolError("bad_message", "playback.truncate needs the item_id of assistant audio.")
    if isinstance(end_ms, bool) or not isinstance(end_ms, (int, float)) or math.isnan(end_ms) or end_ms < 0:
        raise ProtocolError("bad_message", "playback.truncate needs audio_end_ms, the milliseconds played (>= 0).")
    return item_id, end_ms


def parse_text(message: dict) -> str:
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ProtocolError("bad_message", "text must be a non-empty string.")
    text = text.strip()
    if len(text) > TEXT_MAX_CHARS:
        raise ProtocolError("bad_message", f"Typed questions may be at most {TEXT_MAX_CHARS} characters.")
    return text


class AudioRateLimit:
    """Microphone audio may arrive at most ``factor`` times faster than real time on
    average, beyond a 2 s burst (``factor`` 0: no limit). The browser is told at most once
    a second that audio was dropped, so a flood does not become a flood of errors."""

    def __init__(self, factor: float, now: float):
        allowed_bytes_per_s = factor * AUDIO_BYTES_PER_S
        self.bucket = (
            TokenBucket(rate=allowed_bytes_per_s, capacity=2 * AUDIO_BYTES_PER_S, now=now)
            if allowed_bytes_per_s
            else None
        )
        self.told_at: float | None = None

    def admit(self, n_bytes: int, now: float) -> bool:
        return self.bucket is None or self.bucket.take(n_bytes, now)

    def should_tell(self, now: float) -> bool:
        """After a refused chunk: whether the browser needs to hear about it."""
        if self.told_at is None or now - self.told_at >= 1.0:
            self.told_at = now
            return True
        return False


# --- relay -> browser ----------------------------------------------------------------------

ASSISTANT_DELTAS = ("response.output_audio_transcript.delta", "response.output_text.delta")
ASSISTANT_DONE = ("response.output_audio_transcript.done", "response.output_text.done")


def assistant_text(event: dict) -> str:
    """The full text of an ``ASSISTANT_DONE`` event (spoken answers carry a transcript)."""
    kind = event.get("type", "")
    return (event.get("transcript") if kind.endswith("transcript.done") else event.get("text")) or ""


def to_browser(event: dict) -> dict | None:
    """The browser's event for a service event that needs no relay state to translate,
    or None (the relay handles the others itself, or they are not the page's business)."""
    kind = event.get("type")
    item_id = event.get("item_id")
    if kind == "input_audio_buffer.speech_started":
        return {"type": "speech.started", "audio_start_ms": event.get("audio_start_ms")}
    if kind == "input_audio_buffer.speech_stopped":
        return {"type": "speech.stopped"}
    if kind == "input_audio_buffer.committed":
        return {"type": "input.committed", "item_id": item_id}
    if kind == "conversation.item.input_audio_transcription.delta":
        return {"type": "transcript.user", "item_id": item_id, "delta": event.get("delta", ""), "final": False}
    if kind == "conversation.item.input_audio_transcription.completed":
        return {"type": "transcript.user", "item_id": item_id, "text": event.get("transcript") or "", "final": True}
    if kind == "conversation.item.input_audio_transcription.failed":
        return {"type": "transcript.user", "item_id": item_id, "text": "", "final": True, "failed": True}
    if kind == "response.output_audio.done":
        return {"type": "audio.done", "item_id": item_id}
    if kind in ASSISTANT_DELTAS:
        return {
            "type": "transcript.assistant",
            "item_id": event.get("item_id", ""),
            "delta": event.get("delta", ""),
            "final": False,
        }
    if kind in ASSISTANT_DONE:
        return {"type": "transcript.assistant", "item_id": event.get("item_id", ""), "text": assistant_text(event),
                "final": True}
    return None
