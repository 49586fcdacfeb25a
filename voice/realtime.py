"""The upstream side of the relay: one OpenAI Realtime WebSocket per voice connection.

Opened with the official SDK (``AsyncOpenAI(...).realtime.connect(model=...)``), GA event
names. The SDK's own reconnect is not used (no ``on_reconnecting``): a new upstream session
starts empty, so the relay reconnects itself and re-seeds it (see ``voice.consumers``).
"""

from __future__ import annotations

from django.conf import settings

CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0

# Errors that are part of normal turn-taking races, not failures worth showing:
# - a response.create that raced one the server VAD (or a tool follow-up) already started;
# - a cancel or truncate that arrived after the response or item it meant was gone.
QUIET_ERROR_CODES = frozenset(
    {
        "conversation_already_has_active_response",
        "response_cancel_not_active",
        "item_truncate_invalid_item_id",
        "session_expired",  # the connection closes next; the relay reconnects
    }
)
FRIENDLY_ERRORS = {
    "input_audio_buffer_commit_empty": "Nothing was heard. Hold the button while you speak.",
    "rate_limit_exceeded": "The voice service is busy (rate limit). Wait a moment and try again.",
}


def open_upstream():
    """An async context manager yielding an ``AsyncRealtimeConnection``, and the client
    (to close after). Never called without a key; the key travels only in this request's
    Authorization header."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        api_key=settings.OPENAI_API_KEY,
        websocket_base_url=settings.OPENAI_REALTIME_BASE_URL or None,
        max_retries=0,
    )
    manager = client.realtime.connect(
        model=settings.OPENAI_REALTIME_MODEL,
        websocket_connection_options={"open_timeout": CONNECT_TIMEOUT_S, "close_timeout": CLOSE_TIMEOUT_S},
    )
    return client, manager


def describe_connect_failure(exc: BaseException) -> tuple[str, bool]:
    """(a sentence for the clinician, whether retrying can help)."""
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            return (
                f"The voice service refused this server's credentials (HTTP {status}). "
                "An administrator needs to check OPENAI_API_KEY."
            ), False
        if status == 404:
            return (
                f"The voice service does not know the model {settings.OPENAI_REALTIME_MODEL!r} (HTTP 404). "
                "An administrator needs to check OPENAI_REALTIME_MODEL."
            ), False
        if status == 429:
            return "The voice service is over its rate limit (HTTP 429).", True
        return f"The voice service answered HTTP {status}.", status >= 500
    if isinstance(exc, TimeoutError):
        return "The voice service did not answer in time.", True
    if isinstance(exc, OSError):
        return "The voice service cannot be reached from this server.", True
    return f"The connection to the voice service failed ({type(exc).__name__}).", True


def upstream_error_message(error: dict) -> str:
    code = error.get("code") or ""
    if code in FRIENDLY_ERRORS:
        return FRIENDLY_ERRORS[code]
    message = str(error.get("message") or "unknown error")[:300]
    return f"The voice service reported an error: {message}"
