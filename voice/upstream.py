"""The upstream Realtime session of one voice socket: connect, reconnect, re-seed.

A Realtime session ends on its own (the service's time limit, the network). A new one
starts empty, so ``Upstream.run`` seeds every connection it opens (``seed``: instructions,
tools, and after a reconnect the recent transcript) and the conversation goes on. What
the service says is handed to a ``Listener`` (the consumer); this module knows nothing of
the browser.

Reconnect policy: the delays in ``delays`` after consecutive failures, then give up. A
session that lasted ``healthy_s`` and then ended resets the count (that is the normal
end of one, replaced at once); one that ended at once counts as a failure, so that a
service which accepts and drops every connection is not hammered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from medvision import safe_json

from . import instructions, realtime, selectors, tools
from .db import run_in_db

logger = logging.getLogger(__name__)

RECONNECT_DELAYS_S = (0.0, 1.0, 3.0)
HEALTHY_SESSION_S = 30.0
RESEED_UTTERANCES = 20
CLOSED = "The voice service closed the connection."


class Listener(Protocol):
    closing: bool  # the socket is going: stop, and do not reconnect

    async def upstream_ready(self, *, reconnected: bool) -> None:
        """A connection is seeded and the service accepted the configuration."""

    async def upstream_event(self, event: dict) -> None:
        """Any other service event. An exception here replaces the connection."""

    def upstream_lost(self) -> None:
        """The connection is gone (also when the relay is stopping): forget its state."""

    async def upstream_down(self, message: str, *, retrying: bool, after_session: bool) -> None:
        """Lost, and the relay goes on: ``retrying`` (a new connection follows) or giving
        up with ``message``; ``after_session``: the lost one had been established."""


def system_item(text: str, item_id: str | None = None) -> dict:
    """A system message in the service's conversation (context the model reads, not says)."""
    item = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": {"id": item_id, **item} if item_id else item}


def _seed_context(ctx, conversation, with_transcript: bool):
    summary = tools.session_summary(ctx, {})
    recap = selectors.recent_transcript(conversation=conversation, limit=RESEED_UTTERANCES) if with_transcript else []
    return summary, recap


async def seed_events(ctx, conversation, *, mode: Callable[[], str], reconnect: bool) -> list[dict]:
    """What a new upstream session is told first. ``mode`` is read after the database
    call: the clinician may switch it meanwhile, and nothing else would tell the service."""
    summary, recap = await run_in_db(_seed_context, ctx, conversation, reconnect)
    config = instructions.session_config(instructions=instructions.build_instructions(summary), mode=mode())
    events = [{"type": "session.update", "session": config}]
    if recap:
        events.append(system_item(instructions.transcript_recap(recap)))
    return events


class Upstream:
    def __init__(
        self,
        listener: Listener,
        *,
        seed: Callable[[bool], Awaitable[list[dict]]],
        label: str = "",
        delays: tuple[float, ...] = RECONNECT_DELAYS_S,
        healthy_s: float = HEALTHY_SESSION_S,
    ):
        if not delays:
            raise ValueError("delays needs at least one entry: delays[0] is also the pause before a new session.")
        self.listener = listener
        self.seed = seed  # (reconnect) -> the events that set up a new connection
        self.label = label  # for the log: which session
        self.delays = delays
        self.healthy_s = healthy_s
        self.conn = None  # the open, seeded AsyncRealtimeConnection, when there is one
        self.ready = False  # ... and the service has accepted its configuration

    @property
    def usable(self) -> bool:
        return self.conn is not None and self.ready

    async def send(self, *events: dict) -> bool:
        """Send in order; False if there is no connection or a send failed (the reader
        sees the close and reconnects, so the caller need not)."""
        for event in events:
            conn = self.conn
            if conn is None:
                return False
            try:
                await conn.send(event)
            except Exception:  # noqa: BLE001
                logger.info("Voice upstream send failed (%s); the connection is being replaced.", event.get("type"))
                return False
        return True

    async def send_raw(self, payload: str) -> bool:
        """A prepared JSON text (audio: the SDK's typed send would walk a ~64 KB string per
        chunk). False if it could not be sent: live audio is dropped, never queued."""
        conn = self.conn
        if conn is None:
            return False
        try:
            await conn.send_raw(payload)
            return True
        except Exception:  # noqa: BLE001
            return False

    async def run(self) -> None:
        """Until the listener is closing, the policy gives up, or the task is cancelled
        (which closes the open connection on its way out)."""
        loop = asyncio.get_running_loop()
        failures = 0
        had_session = False
        while not self.listener.closing:
            established_at = None
            client = None
            message, retry = CLOSED, True
            try:
                client, manager = realtime.open_upstream()
                async with manager as conn:
                    for event in await self.seed(had_session):
                        await conn.send(event)
                    self.conn = conn
                    while True:
                        event = safe_json.loads(await conn.recv_bytes())
                        kind = event.get("type")
                        if established_at is None and kind in ("session.created", "session.updated"):
                            established_at = loop.time()
                        if kind == "session.updated" and not self.ready:
                            self.ready = True
                            await self.listener.upstream_ready(reconnected=had_session)
                        else:
                            await self.listener.upstream_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect or give up, below
                message, retry = self._log_failure(exc, established=established_at is not None) or (message, retry)
            finally:
                self.conn = None
                self.ready = False
                self.listener.upstream_lost()
                if client is not None:
                    await client.close()
            if self.listener.closing:
                return
            if established_at is not None and loop.time() - established_at >= self.healthy_s:
                failures = 0
            else:
                failures += 1
            had_session = had_session or established_at is not None
            retrying = retry and failures <= len(self.delays)
            await self.listener.upstream_down(message, retrying=retrying, after_session=established_at is not None)
            if not retrying:
                return
            await asyncio.sleep(self.delays[max(failures - 1, 0)])

    def _log_failure(self, exc: Exception, *, established: bool) -> tuple[str, bool] | None:
        """Log why a connection ended; for a connection that never got going, also (what to
        tell the clinician, whether retrying can help)."""
        from websockets.exceptions import ConnectionClosed

        if isinstance(exc, ConnectionClosed):
            logger.info("Voice upstream for session %s closed: %r", self.label, exc)
        elif not established:
            message, retry = realtime.describe_connect_failure(exc)
            logger.info("Voice upstream for session %s failed: %s (%r)", self.label, message, exc)
            return message, retry
        else:  # our own handling failed: keep the trace, then carry on with a new connection
            logger.exception("Voice relay error for session %s", self.label)
        return None
