"""The voice relay: browser <-> this server <-> OpenAI Realtime (the key stays here).

``/ws/procedures/<id>/voice/``. Authorized before accept: 4401 not signed in, 4404 not a
session you may see, 4403 a session you may only read (QA, administrators, connectors:
only the owning clinician talks). Accepted without a configured key, the socket sends one
``not_configured`` error and relays nothing.

Browser -> server (the only messages accepted; anything else is answered with
``{"type": "error", "code": "unsupported"}`` and the socket stays open):
- binary: PCM16 little-endian, 24 kHz, mono audio, at most VOICE_MAX_AUDIO_CHUNK_BYTES;
- ``{"type": "ptt.start"}`` / ``{"type": "ptt.stop"}``: push-to-talk (switches to manual turns);
- ``{"type": "mode", "mode": "vad" | "ptt"}``: server voice detection or push-to-talk;
- ``{"type": "playback.truncate", "item_id": ..., "audio_end_ms": n}``: barge-in, the ms played;
- ``{"type": "text", "text": ...}``: a typed question.
Server -> browser: see ``README.md`` ("Voice copilot"); assistant audio goes as binary
frames (PCM16 24 kHz mono), each run of them announced by ``{"type": "audio.start",
"item_id": ...}``.

This consumer only wires the parts together: ``protocol`` (what the browser may send,
and the service events it sees), ``turns`` (whose turn it is, barge-in), ``upstream``
(the Realtime connection, reconnects), ``tool_calls`` (the model's function calls) and
``transcript`` (the conversation's record).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections import deque

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from medvision.broadcast import session_group
from medvision.ws_auth import CLOSE_NOT_FOUND, CLOSE_READ_ONLY, refuse, signed_in_user

from . import instructions, protocol, realtime, selectors, services, tools, turns, upstream
from .db import run_in_db
from .protocol import ProtocolError
from .tool_calls import GpuClarify, ToolCalls
from .transcript import Transcript

logger = logging.getLogger(__name__)

CLOSE_UPSTREAM_UNAVAILABLE = 4503
CLOSE_CONVERSATION_FULL = 4413

NOT_CONFIGURED = "The voice copilot is not configured on this server (OPENAI_API_KEY is not set)."
# The relay's reconnect policy, read when a socket opens: a module attribute here so that
# tests (and an operator) can change it without reaching into voice.upstream.
RECONNECT_DELAYS_S = upstream.RECONNECT_DELAYS_S
_clock = time.monotonic  # a module attribute, so tests can move time for the audio budget alone


def _event_id() -> str:
    return "mv_" + uuid.uuid4().hex[:24]


def _authorize(user, session_id):
    from procedures import access

    try:
        return selectors.voice_session_get(user=user, session_id=session_id)
    except access.SessionNotFound:
        return None, None


def _start(user, session, model):
    from analysis.models import Finding

    conversation = services.conversation_start(actor=user, session=session, model=model)
    known = {str(pk) for pk in Finding.objects.filter(session=session).values_list("pk", flat=True)}
    return conversation, known


class VoiceRelayConsumer(AsyncWebsocketConsumer):
    configured = False  # accepted with a key: the relay runs (else only not_configured errors)
    closing = False  # going: nothing more is sent to the browser, and no reconnect
    conversation = None
    group = None
    upstream_task = None

    async def connect(self):
        self.tasks: set[asyncio.Task] = set()  # tool calls and follow-ups, awaited on disconnect
        user = await signed_in_user(self, "Sign in to talk to the copilot.")
        if user is None:
            return
        session, refusal = await run_in_db(_authorize, user, self.scope["url_route"]["kwargs"]["session_id"])
        if session is None:
            await refuse(self, CLOSE_NOT_FOUND, "No such procedure session, or it is not yours.")
            return
        if refusal:
            await refuse(self, CLOSE_READ_ONLY, "Only the clinician who owns this session can talk to the copilot.")
            return
        self.session_id = session.pk
        await self.accept()
        if not selectors.voice_configured():
            await self.send_error("not_configured", NOT_CONFIGURED, fatal=True)
            return
        self.configured = True
        self.clarify = GpuClarify(self.channel_name)  # replies come to this consumer's channel
        self.ctx = tools.ToolContext(session_id=session.pk, user=user, clarify=self.clarify)
        self.conversation, self.known_findings = await run_in_db(_start, user, session, settings.OPENAI_REALTIME_MODEL)
        self.turns = turns.Turns()
        self.playback = turns.Playback()
        self.audio_limit = protocol.AudioRateLimit(settings.VOICE_AUDIO_MAX_REALTIME_FACTOR, _clock())
        self.dropped_audio = 0  # chunks not relayed (too fast, or no connection): for debugging
        self.finding_notes: deque[str] = deque()  # ids of the notes in the upstream conversation
        self.transcript = Transcript(
            user=user, conversation=self.conversation, on_full=self.conversation_full,
            interrupted_at=self.playback.interrupted_at,
        )
        self.upstream = upstream.Upstream(self, seed=self.seed, label=str(session.pk), delays=RECONNECT_DELAYS_S)
        self.tool_calls = ToolCalls(
            ctx=self.ctx, upstream=self.upstream, transcript=self.transcript, send_event=self.send_event,
            spawn=self.spawn, known_findings=self.known_findings,
        )
        self.group = session_group(session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_event({"type": "status", "state": "connecting", "conversation": str(self.conversation.pk)})
        self.upstream_task = asyncio.create_task(self.upstream.run())

    async def disconnect(self, code):
        self.closing = True
        if self.upstream_task is not None:
            self.upstream_task.cancel()  # closes the upstream socket on its way out
        # Tool calls already running are let finish (briefly) so that what they changed is
        # also in the transcript; the upstream close handshake waits at most CLOSE_TIMEOUT_S.
        running = [t for t in [self.upstream_task, *getattr(self, "tasks", ())] if t is not None and not t.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=realtime.CLOSE_TIMEOUT_S + 3)
            for task in late:
                task.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.conversation is not None:
            await self.transcript.flush()
            await self.transcript.end()

    # --- to the browser ------------------------------------------------------------------

    async def send_event(self, event: dict):
        if not self.closing:
            await self.send(text_data=json.dumps(event))

    async def send_error(self, code: str, message: str, *, fatal: bool = False):
        await self.send_event(protocol.error_event(code, message, fatal=fatal))

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def conversation_full(self, exc: services.ConversationFull):
        if not self.closing:
            await self.send_error("conversation_full", str(exc), fatal=True)
            self.closing = True
            await self.close(code=CLOSE_CONVERSATION_FULL)

    # --- from the browser ----------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if not self.configured:
            await self.send_error("not_configured", NOT_CONFIGURED, fatal=True)
            return
        # Every refusal is raised before the message changed anything, and answered here.
        try:
            if bytes_data is not None:
                await self.relay_audio(bytes_data)
                return
            message = protocol.parse_message(text_data)
            handler = {
                "ptt.start": self.on_ptt_start,
                "ptt.stop": self.on_ptt_stop,
                "mode": self.on_mode,
                "playback.truncate": self.on_truncate,
                "text": self.on_text,
            }[message["type"]]
            await handler(message)
        except ProtocolError as exc:
            await self.send_error(exc.code, exc.message)

    def require_upstream(self):
        if not self.upstream.usable:
            raise ProtocolError("not_ready", protocol.NOT_READY)

    async def relay_audio(self, chunk: bytes):
        protocol.check_audio_chunk(chunk, settings.VOICE_MAX_AUDIO_CHUNK_BYTES)
        if not chunk:
            return
        now = _clock()
        if not self.audio_limit.admit(len(chunk), now):
            self.dropped_audio += 1
            if self.audio_limit.should_tell(now):
                raise ProtocolError("audio_rate_limited", protocol.AUDIO_TOO_FAST)
            return
        # Built by hand and sent raw: the SDK's typed send would walk a ~64 KB string per chunk.
        payload = '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(chunk).decode("ascii") + '"}'
        if not await self.upstream.send_raw(payload):
            self.dropped_audio += 1  # connecting or reconnecting: live audio cannot wait

    async def request_response(self):
        await self.upstream.send(*self.turns.request())

    async def on_mode(self, message):
        await self.set_mode(protocol.parse_mode(message))

    async def set_mode(self, mode: str):
        if not self.turns.switch_mode(mode):
            return
        await self.upstream.send(turns.mode_update(mode))  # none while (re)connecting: the seed has it
        await self.send_event({"type": "status", "state": "mode", "mode": mode})

    async def on_ptt_start(self, message):
        self.require_upstream()
        await self.set_mode("ptt")
        await self.upstream.send(*self.turns.interrupt(), turns.CLEAR_INPUT)

    async def on_ptt_stop(self, message):
        self.require_upstream()
        await self.upstream.send(*self.turns.ptt_stop())
        await self.request_response()

    async def on_truncate(self, message):
        item_id, end_ms = protocol.parse_truncate(message)
        end_ms = self.playback.truncate(item_id, end_ms)
        await self.upstream.send(turns.truncate(item_id, end_ms))
        await self.transcript.mark_interrupted(item_id, end_ms)

    async def on_text(self, message):
        text = protocol.parse_text(message)
        self.require_upstream()
        item_id = _event_id()
        await self.upstream.send(*self.turns.interrupt(), turns.user_text(item_id, text))
        await self.request_response()
        await self.send_event({"type": "transcript.user", "item_id": item_id, "text": text, "final": True, "typed": True})
        await self.transcript.record("user", text=text, upstream_item_id=item_id)

    # --- from the page's channel group and the GPU worker ----------------------------------

    async def session_event(self, message):
        event = message.get("event") or {}
        if event.get("type") != "finding" or not self.configured:
            return
        finding = event.get("finding") or {}
        finding_id = str(finding.get("id") or "")
        # Only findings new since this conversation began; review updates of known ones
        # (including the ones this copilot made) are not news.
        if not finding_id or finding_id in self.known_findings:
            return
        self.known_findings.add(finding_id)
        limit = settings.VOICE_HISTORY_FINDINGS
        if limit == 0 or self.upstream.conn is None:
            return
        note = instructions.finding_note(finding)
        item_id = _event_id()
        await self.upstream.send(upstream.system_item(note, item_id))
        # The model's context is bounded: the oldest note goes when there are too many.
        self.finding_notes.append(item_id)
        while len(self.finding_notes) > limit:
            await self.upstream.send({"type": "conversation.item.delete", "item_id": self.finding_notes.popleft()})
        await self.transcript.record("system", text=note, upstream_item_id=item_id)

    async def clarify_result(self, message):
        if self.configured:
            self.clarify.resolve(message)

    # --- from the service (voice.upstream.Listener) ----------------------------------------

    async def seed(self, reconnect: bool) -> list[dict]:
        events = await upstream.seed_events(
            self.ctx, self.conversation, mode=lambda: self.turns.mode, reconnect=reconnect
        )
        self.finding_notes.clear()  # they were items of the previous upstream session
        return events

    async def upstream_ready(self, *, reconnected: bool):
        await self.send_event(
            {
                "type": "status",
                "state": "ready",
                "mode": self.turns.mode,
                "reconnected": reconnected,
                "conversation": str(self.conversation.pk),
            }
        )

    def upstream_lost(self):
        self.turns.upstream_lost()
        self.playback.upstream_lost()

    async def upstream_down(self, message: str, *, retrying: bool, after_session: bool):
        await self.transcript.flush()
        if not retrying:
            await self.send_error("upstream_unavailable", message, fatal=True)
            await self.close(code=CLOSE_UPSTREAM_UNAVAILABLE)
            return
        await self.send_event({"type": "status", "state": "reconnecting", "message": message})
        if after_session:
            await self.transcript.count_reconnect()

    async def upstream_event(self, event: dict):
        kind = event.get("type")
        if kind == "error":
            await self.on_upstream_error(event.get("error") or {})
        elif kind == "response.created":
            self.turns.response_started((event.get("response") or {}).get("id"))
            await self.send_event({"type": "response.started"})
        elif kind == "response.output_audio.delta":
            await self.relay_assistant_audio(event)
        elif kind == "response.function_call_arguments.done":
            await self.tool_calls.start(event)
        elif kind == "response.done":
            await self.on_response_done(event.get("response") or {})
        elif (relayed := protocol.to_browser(event)) is not None:
            await self.send_event(relayed)
            await self.transcript.heard(event)

    async def relay_assistant_audio(self, event: dict):
        item_id = event.get("item_id", "")
        try:
            pcm = base64.b64decode(event.get("delta") or "")
        except ValueError:
            return
        if self.playback.relayed(item_id, len(pcm)):
            await self.send_event({"type": "audio.start", "item_id": item_id})
        if pcm and not self.closing:
            await self.send(bytes_data=pcm)

    async def on_upstream_error(self, error: dict):
        code = error.get("code") or ""
        if code in realtime.QUIET_ERROR_CODES:
            logger.debug("Voice upstream (quiet): %s %s", code, error.get("message"))
            return
        logger.info("Voice upstream error for session %s: %s %s", self.session_id, code, error.get("message"))
        await self.send_error("upstream", realtime.upstream_error_message(error))

    async def on_response_done(self, response: dict):
        status = response.get("status")
        self.turns.response_finished()
        await self.send_event({"type": "response.done", "status": status})
        if status == "failed":
            error = (response.get("status_details") or {}).get("error") or {}
            if error.get("code") not in realtime.QUIET_ERROR_CODES:
                await self.send_error("upstream", realtime.upstream_error_message(error))
        await self.transcript.flush()
        calls = self.tool_calls.take(response.get("id"))
        if calls:
            self.spawn(self.follow_up(calls, cancelled=status == "cancelled"))
        else:
            await self.upstream.send(*self.turns.take_wanted())

    async def follow_up(self, calls, *, cancelled: bool):
        """Once every tool call of a response has its output in the conversation, ask for
        the spoken answer (``Turns.after_tools`` says whether)."""
        await asyncio.gather(*calls, return_exceptions=True)
        if self.upstream.conn is not None:
            await self.upstream.send(*self.turns.after_tools(cancelled=cancelled))
