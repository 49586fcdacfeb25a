"""The transport from server code to the open pages of a session (a channel-layer group).

Producers publish typed events through ``medvision.events``, which calls
``broadcast(session_id, message)`` here; every WebSocket consumer of that session is in the
group and forwards the message as JSON.

Embedded profile: the channel layer is in memory and the Celery worker is a thread of the
web process. The in-memory layer's queues belong to the server's event loop and are not
thread-safe, so a send from the worker thread is handed to that loop
(``run_coroutine_threadsafe``) instead of running on a private loop of its own, which
would leave the waiting consumer asleep.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
_server_loop: asyncio.AbstractEventLoop | None = None


def session_group(session_id) -> str:
    return f"session.{session_id}"


def register_server_loop() -> None:
    """Called by consumers (inside the ASGI server's loop) so threads can reach it."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def _message(event: dict) -> dict:
    return {"type": "session.event", "event": event}


def _deliver(send) -> None:
    """Run ``send(layer)`` (a coroutine factory) from sync code, on the server's loop when
    the layer is in memory (see the module docstring)."""
    layer = get_channel_layer()
    if layer is None:
        return

    async def _send():
        await send(layer)

    loop = _server_loop
    if isinstance(layer, InMemoryChannelLayer) and loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(_send(), loop).result(SEND_TIMEOUT_S)
    else:
        async_to_sync(_send)()


def broadcast(session_id, event: dict) -> None:
    try:
        _deliver(lambda layer: layer.group_send(session_group(session_id), _message(event)))
    except Exception:
        logger.exception("Could not broadcast %s to session %s", event.get("type"), session_id)


def send_to_channel(channel_name: str, message: dict) -> None:
    """Reply to one consumer (e.g. the voice relay waiting for a "look again" answer)."""
    _deliver(lambda layer: layer.send(channel_name, message))


async def abroadcast(session_id, event: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(session_group(session_id), _message(event))
