"""The one way server code publishes to the open pages of a session.

Tasks and services call ``broadcast(session_id, event)``; every WebSocket consumer of that
session is in the group and forwards the event as JSON. Events are small dicts with a
``type`` ("finding", "frame", "progress", "status", ...).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def session_group(session_id) -> str:
    return f"session.{session_id}"


def broadcast(session_id, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(session_id), {"type": "session.event", "event": event})
    except Exception:  # noqa: BLE001 - a page missing an update must never fail the analysis
        logger.exception("Could not broadcast %s to session %s", event.get("type"), session_id)


async def abroadcast(session_id, event: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(session_group(session_id), {"type": "session.event", "event": event})
