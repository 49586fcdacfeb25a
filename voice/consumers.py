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
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections import OrderedDict, deque

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from medvision import safe_json
from medvision.broadcast import register_server_loop, session_group
from medvision.rate_limit import TokenBucket
from medvision.ws_auth import CLOSE_NOT_FOUND, CLOSE_READ_ONLY, CLOSE_UNAUTHENTICATED, refuse

from . import instructions, realtime, selectors, services, tools
from .db import run_in_db

logger = logging.getLogger(__name__)

CLOSE_UPSTREAM_UNAVAILABLE = 4503
CLOSE_CONVERSATION_FULL = 4413

NOT_CONFIGURED = "The voice copilot is not configured on this server (OPENAI_API_KEY is not set)."
TEXT_MAX_CHARS = 2000
ITEM_ID_MAX_CHARS = 64
# Reconnect delays after consecutive failures; after the last one the relay gives up. An
# upstream session that lasted HEALTHY_SESSION_S and then ended (the service's time limit,
# the network) resets the count, so it is replaced at once.
RECONNECT_DELAYS_S = (0.0, 1.0, 3.0)
HEALTHY_SESSION_S = 30.0
RESEED_UTTERANCES = 20
AUDIO_ITEMS_REMEMBERED = 32
BYTES_PER_MS = 48  # 24 kHz x 2 bytes
AUDIO_BYTES_PER_S = BYTES_PER_MS * 1000
_clock = time.monotonic  # a module attribute, so tests can move time for the audio budget alone
# A "look again" answer waits behind at most one frame batch on the GPU worker.
CLARIFY_TIMEOUT_S = 120.0


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


def _seed_context(ctx, conversation, with_transcript: bool):
    summary = tools.session_summary(ctx, {})
    recap = selectors.recent_transcript(conversation=conversation, limit=RESEED_UTTERANCES) if with_transcript else []
    return summary, recap


class VoiceRelayConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        register_server_loop()
        self.configured = False
        self.closing = False
        self.conversation = None
        self.group = None
        self.upstream = None  # the open AsyncRealtimeConnection, when there is one
        self.upstream_task = None
        self.tasks: set[asyncio.Task] = set()
        self.db_lock = asyncio.Lock()
        self.mode = "vad"
        self.ready = False
        self.active_response = None
        self.response_wanted = False  # a response.create to send once the active one is done
        self.audio_item = None
        self.audio_ms: OrderedDict[str, float] = OrderedDict()  # assistant audio relayed per item
        self.interrupted: dict[str, int] = {}
        self.partial_text: dict[str, str] = {}
        self.recorded_items: set[str] = set()
        self.tool_tasks: dict[str, list[asyncio.Task]] = {}
        self.finding_notes: deque[str] = deque()
        self.dropped_audio = 0
        allowed_bytes_per_s = settings.VOICE_AUDIO_MAX_REALTIME_FACTOR * AUDIO_BYTES_PER_S
        self.audio_budget = (TokenBucket(rate=allowed_bytes_per_s, capacity=2 * AUDIO_BYTES_PER_S, now=_clock())
                             if allowed_bytes_per_s else None)  # 0: no limit
        self.rate_limit_told_at = None  # when the browser was last told its audio is too fast
        self.pending_clarify: dict[str, asyncio.Future] = {}

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await refuse(self, CLOSE_UNAUTHENTICATED, "Sign in to talk to the copilot.")
            return
        session, refusal = await run_in_db(_authorize, user, self.scope["url_route"]["kwargs"]["session_id"])
        if session is None:
            await refuse(self, CLOSE_NOT_FOUND, "No such procedure session, or it is not yours.")
            return
        if refusal:
            await refuse(self, CLOSE_READ_ONLY, "Only the clinician who owns this session can talk to the copilot.")
            return
        self.user = user
        self.session_id = session.pk
        self.ctx = tools.ToolContext(session_id=session.pk, user=user, clarify=self.clarify_on_gpu)
        await self.accept()
        if not selectors.voice_configured():
            await self.send_event({"type": "error", "code": "not_configured", "message": NOT_CONFIGURED, "fatal": True})
            return
        self.configured = True
        self.conversation, self.known_findings = await run_in_db(_start, user, session, settings.OPENAI_REALTIME_MODEL)
        self.group = session_group(session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_event({"type": "status", "state": "connecting", "conversation": str(self.conversation.pk)})
        self.upstream_task = asyncio.create_task(self.run_upstream())

    async def disconnect(self, code):
        self.closing = True
        if self.upstream_task is not None:
            self.upstream_task.cancel()  # closes the upstream socket on its way out
        # Tool calls already running are let finish (briefly) so that what they changed is
        # also in the transcript; the upstream close handshake waits at most CLOSE_TIMEOUT_S.
        running = [t for t in [self.upstream_task, *self.tasks] if t is not None and not t.done()]
        if running:
            _, late = await asyncio.wait(running, timeout=realtime.CLOSE_TIMEOUT_S + 3)
            for task in late:
                task.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.conversation is not None:
            await self.flush_partial_transcripts()
            await run_in_db(services.conversation_end, actor=self.user, conversation=self.conversation)

    # --- to the browser ------------------------------------------------------------------

    async def send_event(self, event: dict):
        if not self.closing:
            await self.send(text_data=json.dumps(event))

    async def send_error(self, code: str, message: str, *, fatal: bool = False):
        await self.send_event({"type": "error", "code": code, "message": message, "fatal": fatal})

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- from the browser ----------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if not self.configured:
            await self.send_error("not_configured", NOT_CONFIGURED, fatal=True)
            return
        if bytes_data is not None:
            await self.relay_audio(bytes_data)
            return
        try:
            message = safe_json.loads(text_data or "")
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        handler = (
            {
                "ptt.start": self.on_ptt_start,
                "ptt.stop": self.on_ptt_stop,
                "mode": self.on_mode,
                "playback.truncate": self.on_truncate,
                "text": self.on_text,
            }.get(kind)
            if isinstance(kind, str)
            else None
        )
        if handler is None:
            await self.send_error(
                "unsupported",
                "Unsupported message. Send audio as binary PCM16 24 kHz mono, or JSON of type "
                "ptt.start, ptt.stop, mode, playback.truncate or text.",
            )
            return
        await handler(message)

    async def upstream_send(self, event: dict) -> bool:
        conn = self.upstream
        if conn is None:
            return False
        try:
            await conn.send(event)
            return True
        except Exception:  # noqa: BLE001 - the reader task sees the close and reconnects
            logger.info("Voice upstream send failed (%s); the connection is being replaced.", event.get("type"))
            return False

    async def require_upstream(self) -> bool:
        if self.upstream is None or not self.ready:
            await self.send_error("not_ready", "The voice copilot is still connecting; try again in a moment.")
            return False
        return True

    async def relay_audio(self, chunk: bytes):
        limit = settings.VOICE_MAX_AUDIO_CHUNK_BYTES
        if len(chunk) > limit:
            await self.send_error(
                "audio_too_large", f"Audio messages may be at most {limit} bytes; this one had {len(chunk)}."
            )
            return
        if len(chunk) % 2:
            await self.send_error("bad_audio", "Audio must be 16-bit PCM: an even number of bytes.")
            return
        conn = self.upstream
        if not chunk:
            return
        now = _clock()
        if self.audio_budget is not None and not self.audio_budget.take(len(chunk), now):
            self.dropped_audio += 1
            if self.rate_limit_told_at is None or now - self.rate_limit_told_at >= 1.0:
                self.rate_limit_told_at = now
                await self.send_error("audio_rate_limited", "Audio is arriving faster than real time; "
                                      "the excess was dropped. Send microphone audio as it is captured.")
            return
        if conn is None:
            self.dropped_audio += 1  # connecting or reconnecting: live audio cannot wait
            return
        # Built by hand and sent raw: the SDK's typed send would walk a ~64 KB string per chunk.
        payload = '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(chunk).decode("ascii") + '"}'
        try:
            await conn.send_raw(payload)
        except Exception:  # noqa: BLE001
            self.dropped_audio += 1

    async def request_response(self):
        """Ask for a response now, or as soon as the active one is done: the service allows
        one response at a time."""
        if self.active_response:
            self.response_wanted = True
        else:
            await self.upstream_send({"type": "response.create"})

    async def on_mode(self, message):
        mode = message.get("mode")
        if mode not in ("vad", "ptt"):
            await self.send_error("bad_message", 'mode must be "vad" or "ptt".')
            return
        await self.set_mode(mode)

    async def set_mode(self, mode: str):
        if mode == self.mode:
            return
        self.mode = mode
        if self.upstream is not None:
            await self.upstream_send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {"input": {"turn_detection": instructions.turn_detection(mode)}},
                    },
                }
            )
        await self.send_event({"type": "status", "state": "mode", "mode": mode})

    async def on_ptt_start(self, message):
        if not await self.require_upstream():
            return
        await self.set_mode("ptt")
        if self.active_response:
            await self.upstream_send({"type": "response.cancel"})
        await self.upstream_send({"type": "input_audio_buffer.clear"})

    async def on_ptt_stop(self, message):
        if not await self.require_upstream():
            return
        if self.mode != "ptt":
            await self.send_error("bad_message", "ptt.stop without ptt.start.")
            return
        await self.upstream_send({"type": "input_audio_buffer.commit"})
        await self.request_response()

    async def on_truncate(self, message):
        item_id, end_ms = message.get("item_id"), message.get("audio_end_ms")
        if not isinstance(item_id, str) or not item_id or len(item_id) > ITEM_ID_MAX_CHARS:
            await self.send_error("bad_message", "playback.truncate needs the item_id of assistant audio.")
            return
        if isinstance(end_ms, bool) or not isinstance(end_ms, (int, float)) or end_ms < 0:
            await self.send_error(
                "bad_message", "playback.truncate needs audio_end_ms, the milliseconds played (>= 0)."
            )
            return
        if item_id not in self.audio_ms:
            await self.send_error("unknown_item", "playback.truncate names audio this connection did not play.")
            return
        # The server refuses an end beyond the audio it sent; the browser cannot have played more.
        end_ms = int(min(end_ms, self.audio_ms[item_id]))
        self.interrupted[item_id] = end_ms
        await self.upstream_send(
            {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}
        )
        async with self.db_lock:
            await run_in_db(
                services.utterance_mark_interrupted,
                actor=self.user,
                conversation=self.conversation,
                upstream_item_id=item_id,
                audio_end_ms=end_ms,
            )

    async def on_text(self, message):
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            await self.send_error("bad_message", "text must be a non-empty string.")
            return
        text = text.strip()
        if len(text) > TEXT_MAX_CHARS:
            await self.send_error("bad_message", f"Typed questions may be at most {TEXT_MAX_CHARS} characters.")
            return
        if not await self.require_upstream():
            return
        item_id = _event_id()
        if self.active_response:
            await self.upstream_send({"type": "response.cancel"})
        await self.upstream_send(
            {
                "type": "conversation.item.create",
                "item": {
                    "id": item_id,
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        await self.request_response()
        await self.send_event(
            {"type": "transcript.user", "item_id": item_id, "text": text, "final": True, "typed": True}
        )
        await self.record("user", text=text, upstream_item_id=item_id)

    # --- session events (the page's channel group) ----------------------------------------

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
        if limit == 0 or self.upstream is None:
            return
        note = instructions.finding_note(finding)
        item_id = _event_id()
        await self.upstream_send(
            {
                "type": "conversation.item.create",
                "item": {
                    "id": item_id,
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": note}],
                },
            }
        )
        self.finding_notes.append(item_id)
        while len(self.finding_notes) > limit:
            await self.upstream_send({"type": "conversation.item.delete", "item_id": self.finding_notes.popleft()})
        await self.record("system", text=note, upstream_item_id=item_id)

    # --- the upstream ----------------------------------------------------------------------

    async def run_upstream(self):
        loop = asyncio.get_running_loop()
        failures = 0
        had_session = False
        while not self.closing:
            established_at = None
            client = None
            message, retry = "The voice service closed the connection.", True
            try:
                client, manager = realtime.open_upstream()
                async with manager as conn:
                    await self.seed(conn, reconnect=had_session)
                    self.upstream = conn
                    while True:
                        event = safe_json.loads(await conn.recv_bytes())
                        if established_at is None and event.get("type") in ("session.created", "session.updated"):
                            established_at = loop.time()
                        await self.on_upstream_event(event, reconnect=had_session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                from websockets.exceptions import ConnectionClosed

                if established_at is None and not isinstance(exc, ConnectionClosed):
                    message, retry = realtime.describe_connect_failure(exc)
                    logger.info("Voice upstream for session %s failed: %s (%r)", self.session_id, message, exc)
                elif isinstance(exc, ConnectionClosed):
                    logger.info("Voice upstream for session %s closed: %r", self.session_id, exc)
                else:  # our own handling failed: keep the trace, then carry on with a new connection
                    logger.exception("Voice relay error for session %s", self.session_id)
            finally:
                self.upstream = None
                self.ready = False
                self.active_response = None
                self.response_wanted = False
                self.audio_item = None
                if client is not None:
                    await client.close()
            if self.closing:
                return
            await self.flush_partial_transcripts()
            # An upstream session that lasted is the normal end of one (the service's time
            # limit): start afresh. One that ended at once counts as a failure, so that a
            # service which accepts and drops every connection is not hammered.
            if established_at is not None and loop.time() - established_at >= HEALTHY_SESSION_S:
                failures = 0
            else:
                failures += 1
            if established_at is not None:
                had_session = True
            if not retry or failures > len(RECONNECT_DELAYS_S):
                await self.send_error("upstream_unavailable", message, fatal=True)
                await self.close(code=CLOSE_UPSTREAM_UNAVAILABLE)
                return
            await self.send_event({"type": "status", "state": "reconnecting", "message": message})
            if established_at is not None:
                async with self.db_lock:
                    await run_in_db(
                        services.conversation_count_reconnect, actor=self.user, conversation=self.conversation
                    )
            await asyncio.sleep(RECONNECT_DELAYS_S[max(failures - 1, 0)])

    async def seed(self, conn, *, reconnect: bool):
        """Instructions and tools; after a reconnect also the recent transcript, so the new
        upstream session continues the same conversation."""
        summary, recap = await run_in_db(_seed_context, self.ctx, self.conversation, reconnect)
        config = instructions.session_config(instructions=instructions.build_instructions(summary), mode=self.mode)
        await conn.send({"type": "session.update", "session": config})
        if recap:
            await conn.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "system",
                        "content": [{"type": "input_text", "text": instructions.transcript_recap(recap)}],
                    },
                }
            )
        self.finding_notes.clear()

    async def on_upstream_event(self, event: dict, *, reconnect: bool):
        kind = event.get("type")
        if kind == "session.updated" and not self.ready:
            self.ready = True
            await self.send_event(
                {
                    "type": "status",
                    "state": "ready",
                    "mode": self.mode,
                    "reconnected": reconnect,
                    "conversation": str(self.conversation.pk),
                }
            )
        elif kind == "error":
            await self.on_upstream_error(event.get("error") or {})
        elif kind == "input_audio_buffer.speech_started":
            await self.send_event({"type": "speech.started", "audio_start_ms": event.get("audio_start_ms")})
        elif kind == "input_audio_buffer.speech_stopped":
            await self.send_event({"type": "speech.stopped"})
        elif kind == "input_audio_buffer.committed":
            await self.send_event({"type": "input.committed", "item_id": event.get("item_id")})
        elif kind == "conversation.item.input_audio_transcription.delta":
            await self.send_event(
                {
                    "type": "transcript.user",
                    "item_id": event.get("item_id"),
                    "delta": event.get("delta", ""),
                    "final": False,
                }
            )
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = event.get("transcript") or ""
            await self.send_event(
                {"type": "transcript.user", "item_id": event.get("item_id"), "text": text, "final": True}
            )
            if text.strip():
                await self.record("user", text=text, upstream_item_id=event.get("item_id", ""))
        elif kind == "conversation.item.input_audio_transcription.failed":
            await self.send_event(
                {"type": "transcript.user", "item_id": event.get("item_id"), "text": "", "final": True, "failed": True}
            )
        elif kind == "response.created":
            self.active_response = (event.get("response") or {}).get("id") or True
            await self.send_event({"type": "response.started"})
        elif kind == "response.output_audio.delta":
            await self.relay_assistant_audio(event)
        elif kind == "response.output_audio.done":
            await self.send_event({"type": "audio.done", "item_id": event.get("item_id")})
        elif kind in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            item_id = event.get("item_id", "")
            self.partial_text[item_id] = self.partial_text.get(item_id, "") + (event.get("delta") or "")
            await self.send_event(
                {"type": "transcript.assistant", "item_id": item_id, "delta": event.get("delta", ""), "final": False}
            )
        elif kind in ("response.output_audio_transcript.done", "response.output_text.done"):
            item_id = event.get("item_id", "")
            text = event.get("transcript") if kind.endswith("transcript.done") else event.get("text")
            self.partial_text.pop(item_id, None)
            await self.send_event(
                {"type": "transcript.assistant", "item_id": item_id, "text": text or "", "final": True}
            )
            await self.record_assistant(item_id, text or "")
        elif kind == "response.function_call_arguments.done":
            await self.start_tool_call(event)
        elif kind == "response.done":
            await self.on_response_done(event.get("response") or {})

    async def relay_assistant_audio(self, event: dict):
        item_id = event.get("item_id", "")
        try:
            pcm = base64.b64decode(event.get("delta") or "")
        except ValueError:
            return
        if item_id != self.audio_item:
            self.audio_item = item_id
            await self.send_event({"type": "audio.start", "item_id": item_id})
        self.audio_ms[item_id] = self.audio_ms.get(item_id, 0.0) + len(pcm) / BYTES_PER_MS
        self.audio_ms.move_to_end(item_id)
        while len(self.audio_ms) > AUDIO_ITEMS_REMEMBERED:
            self.audio_ms.popitem(last=False)
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
        response_id = response.get("id")
        status = response.get("status")
        self.active_response = None
        await self.send_event({"type": "response.done", "status": status})
        if status == "failed":
            error = (response.get("status_details") or {}).get("error") or {}
            if error.get("code") not in realtime.QUIET_ERROR_CODES:
                await self.send_error("upstream", realtime.upstream_error_message(error))
        await self.flush_partial_transcripts()
        calls = self.tool_tasks.pop(response_id, []) if response_id else []
        if calls:
            self.spawn(self.follow_up(calls, cancelled=status == "cancelled"))
        elif self.response_wanted:
            self.response_wanted = False
            await self.upstream_send({"type": "response.create"})

    async def follow_up(self, calls, *, cancelled: bool):
        """Once every tool call of a response has its output in the conversation, ask for
        the spoken answer; unless the clinician interrupted that response (the next turn
        will see the outputs anyway)."""
        await asyncio.gather(*calls, return_exceptions=True)
        if (not cancelled or self.response_wanted) and self.upstream is not None:
            self.response_wanted = False
            await self.request_response()

    async def start_tool_call(self, event: dict):
        name, call_id = event.get("name", ""), event.get("call_id", "")
        await self.send_event({"type": "tool", "name": name, "call_id": call_id, "status": "running"})
        task = self.spawn(self.run_tool_call(self.upstream, name, call_id, event.get("arguments")))
        self.tool_tasks.setdefault(event.get("response_id") or "", []).append(task)

    async def clarify_on_gpu(self, frame, procedure_type: str, question: str) -> dict:
        """"Look again" through the gpu queue: the GPU worker answers and replies to this
        consumer's channel (``clarify_result``), so the web process never loads a model."""
        from analysis.tasks import analyze_clarify

        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.pending_clarify[request_id] = future
        try:
            await sync_to_async(analyze_clarify.delay, thread_sensitive=False)(
                str(frame.pk), procedure_type, question, self.channel_name, request_id)
            return await asyncio.wait_for(future, CLARIFY_TIMEOUT_S)
        except TimeoutError:
            return {"ok": False, "error": "The image model did not answer in time; ask again in a moment."}
        finally:
            self.pending_clarify.pop(request_id, None)

    async def clarify_result(self, message):
        future = self.pending_clarify.get(message.get("request_id"))
        if future is not None and not future.done():
            future.set_result(message["result"])

    async def run_tool_call(self, conn, name: str, call_id: str, raw_arguments):
        if name in tools.TOOL_NAMES:
            args, result = await tools.execute(self.ctx, name, raw_arguments)
        else:
            args, result = (
                {"raw": str(raw_arguments)[:2000]},
                {"ok": False, "error": f"There is no tool called {name!r}."},
            )
        if conn is not None and conn is self.upstream:
            await self.upstream_send(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(result)},
                }
            )
        await self.send_event(
            {
                "type": "tool",
                "name": name,
                "call_id": call_id,
                "status": "done",
                "ok": bool(result.get("ok")),
                "summary": tools.result_summary(name, result),
            }
        )
        await self.record(
            "tool",
            text=tools.result_summary(name, result),
            upstream_item_id=call_id,
            tool_name=name,
            tool_arguments=args,
            tool_result=result,
        )
        if name in ("confirm_finding", "reject_finding", "add_note") and result.get("ok"):
            finding = result.get("finding") or {}
            if finding.get("id"):
                self.known_findings.add(finding["id"])

    # --- records -------------------------------------------------------------------------

    async def record(self, role: str, **fields):
        async with self.db_lock:
            try:
                await run_in_db(
                    services.utterance_record, actor=self.user, conversation=self.conversation, role=role, **fields
                )
            except services.ConversationFull as exc:
                if not self.closing:
                    await self.send_error("conversation_full", str(exc), fatal=True)
                    self.closing = True
                    await self.close(code=CLOSE_CONVERSATION_FULL)

    async def record_assistant(self, item_id: str, text: str):
        if item_id in self.recorded_items or not text.strip():
            return
        self.recorded_items.add(item_id)
        await self.record(
            "assistant", text=text, upstream_item_id=item_id, interrupted_at_ms=self.interrupted.get(item_id)
        )

    async def flush_partial_transcripts(self):
        """Assistant speech cut off before its transcript was done (a cancelled response,
        a dropped connection) is recorded with what was transcribed."""
        partial, self.partial_text = self.partial_text, {}
        for item_id, text in partial.items():
            await self.record_assistant(item_id, text)
