"""The record of one voice conversation, written from the relay's event loop.

Every write goes through ``run_in_db`` one at a time (``lock``): the question is recorded
before the tool call it caused, and two writes never race for the conversation's row. The
conversation is bounded (``services.ConversationFull``); the first write past the bound
calls ``on_full`` once, and the relay ends the socket.

Assistant speech is recorded when its transcript is done; what was cut off before that (a
cancelled response, a dropped connection) is kept as it arrives and recorded by ``flush``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from . import services
from .db import run_in_db
from .protocol import ASSISTANT_DELTAS, ASSISTANT_DONE, assistant_text


class Transcript:
    def __init__(
        self,
        *,
        user,
        conversation,
        on_full: Callable[[services.ConversationFull], Awaitable[None]],
        interrupted_at: Callable[[str], int | None] = lambda item_id: None,
    ):
        self.user = user
        self.conversation = conversation
        self.on_full = on_full
        self.interrupted_at = interrupted_at  # ms heard of an assistant item talked over, if any
        self.lock = asyncio.Lock()
        self.partial: dict[str, str] = {}  # assistant text so far, per item not yet recorded
        self.recorded: set[str] = set()  # assistant items recorded (a flush must not repeat one)

    async def write(self, fn, /, **kwargs):
        async with self.lock:
            return await run_in_db(fn, actor=self.user, conversation=self.conversation, **kwargs)

    async def record(self, role: str, **fields) -> None:
        try:
            await self.write(services.utterance_record, role=role, **fields)
        except services.ConversationFull as exc:
            await self.on_full(exc)

    async def heard(self, event: dict) -> None:
        """Keep what a service event says (the clinician's words, the assistant's)."""
        kind = event.get("type")
        item_id = event.get("item_id", "")
        if kind == "conversation.item.input_audio_transcription.completed":
            text = event.get("transcript") or ""
            if text.strip():
                await self.record("user", text=text, upstream_item_id=item_id)
        elif kind in ASSISTANT_DELTAS:
            self.partial[item_id] = self.partial.get(item_id, "") + (event.get("delta") or "")
        elif kind in ASSISTANT_DONE:
            self.partial.pop(item_id, None)
            await self.assistant(item_id, assistant_text(event))

    async def assistant(self, item_id: str, text: str) -> None:
        if item_id in self.recorded or not text.strip():
            return
        self.recorded.add(item_id)
        await self.record("assistant", text=text, upstream_item_id=item_id, interrupted_at_ms=self.interrupted_at(item_id))

    async def flush(self) -> None:
        """Record the assistant speech cut off before its transcript was done."""
        partial, self.partial = self.partial, {}
        for item_id, text in partial.items():
            await self.assistant(item_id, text)

    async def mark_interrupted(self, item_id: str, end_ms: int) -> None:
        await self.write(services.utterance_mark_interrupted, upstream_item_id=item_id, audio_end_ms=end_ms)

    async def count_reconnect(self) -> None:
        await self.write(services.conversation_count_reconnect)

    async def end(self) -> None:
        # Not under the lock: the relay calls this last, once its other writers are done.
        await run_in_db(services.conversation_end, actor=self.user, conversation=self.conversation)
