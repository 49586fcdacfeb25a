"""A local stand-in for the OpenAI Realtime WebSocket API (GA events), on 127.0.0.1.

It speaks enough of the protocol for the relay's tests and benchmark: session.created /
updated, the input audio buffer (append, commit, clear), conversation items (create,
truncate, delete), responses (create, cancel) with audio, transcripts and function calls,
and errors. Everything a client sends is kept in ``FakeConnection.received`` so tests can
assert on it. What a ``response.create`` produces is scripted with ``FakeRealtime.responders``
(one coroutine per response; the default echoes the last committed audio back).

Not a model: it never invents content beyond what the test scripted.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def pcm_tone(ms: int, value: int = 1000) -> bytes:
    """``ms`` of a constant PCM16 24 kHz mono signal (not silence, so it is audible)."""
    return value.to_bytes(2, "little", signed=True) * (24 * ms)


Responder = Callable[["FakeConnection", dict], Awaitable[None]]


class FakeConnection:
    def __init__(self, server: FakeRealtime, ws, model: str | None):
        self.server = server
        self.ws = ws
        self.model = model
        self.received: list[dict] = []
        self.changed = asyncio.Condition()
        self.audio_buffer = bytearray()
        self.last_committed_audio = b""
        self.active_response: str | None = None
        self.items: dict[str, dict] = {}
        self.session: dict = {}
        self.closed = asyncio.Event()

    async def send(self, event: dict) -> None:
        event.setdefault("event_id", new_id("event"))
        await self.ws.send(json.dumps(event))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.received if e.get("type") == kind]

    async def wait_for(self, kind: str, predicate=lambda e: True, *, timeout: float = 5.0, after: int = 0) -> dict:
        """The first event of type ``kind`` (matching ``predicate``) received from the
        client, at position ``after`` or later; waits for it at most ``timeout`` s."""

        def find():
            for event in self.received[after:]:
                if event.get("type") == kind and predicate(event):
                    return event
            return None

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(find), timeout)
        return find()

    # --- scripted responses ------------------------------------------------------------

    async def begin_response(self) -> str:
        response_id = new_id("resp")
        self.active_response = response_id
        await self.send(
            {
                "type": "response.created",
                "response": {"id": response_id, "object": "realtime.response", "status": "in_progress", "output": []},
            }
        )
        return response_id

    async def end_response(self, response_id: str, output: list, status: str = "completed") -> None:
        if self.active_response != response_id:
            return  # cancelled meanwhile; the cancel already sent response.done
        self.active_response = None
        await self.send(
            {
                "type": "response.done",
                "response": {"id": response_id, "object": "realtime.response", "status": status, "output": output},
            }
        )

    async def speak(self, text: str, audio: bytes, *, chunk_bytes: int = 4800, pause_s: float = 0.0) -> str:
        """One assistant message with audio and its transcript. Returns the item id."""
        response_id = await self.begin_response()
        item_id = new_id("item")
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        await self.send(
            {"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item}
        )
        for offset in range(0, len(audio), chunk_bytes):
            if self.active_response != response_id:
                break
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(audio[offset : offset + chunk_bytes]).decode(),
                }
            )
            if pause_s:
                await asyncio.sleep(pause_s)
        words = text.split(" ")
        for i, word in enumerate(words):
            await self.send(
                {
                    "type": "response.output_audio_transcript.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word + (" " if i < len(words) - 1 else ""),
                }
            )
        await self.send(
            {
                "type": "response.output_audio.done",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
            }
        )
        await self.send(
            {
                "type": "response.output_audio_transcript.done",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "transcript": text,
            }
        )
        item = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": text}]}
        self.items[item_id] = item
        await self.send(
            {"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": item}
        )
        await self.end_response(response_id, [item])
        return item_id

    async def call_function(self, name: str, arguments: dict) -> str:
        """One response that calls a function tool. Returns the call id."""
        response_id = await self.begin_response()
        item_id, call_id = new_id("item"), new_id("call")
        args = json.dumps(arguments)
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        await self.send(
            {"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item}
        )
        await self.send(
            {
                "type": "response.function_call_arguments.delta",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "delta": args,
            }
        )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": args,
            }
        )
        item = {**item, "status": "completed", "arguments": args}
        await self.send(
            {"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": item}
        )
        await self.end_response(response_id, [item])
        return call_id

    async def error(self, code: str, message: str, kind: str = "invalid_request_error") -> None:
        await self.send(
            {
                "type": "error",
                "error": {"type": kind, "code": code, "message": message, "param": None, "event_id": None},
            }
        )

    # --- the protocol ------------------------------------------------------------------

    async def handle(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "session.update":
            self.session.update(event.get("session") or {})
            await self.send({"type": "session.updated", "session": {"object": "realtime.session", **self.session}})
        elif kind == "input_audio_buffer.append":
            audio = base64.b64decode(event["audio"])
            if self.server.echo_audio:
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        "response_id": "resp_echo",
                        "item_id": "item_echo",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": event["audio"],
                    }
                )
            else:
                self.audio_buffer += audio
        elif kind == "input_audio_buffer.clear":
            self.audio_buffer.clear()
            await self.send({"type": "input_audio_buffer.cleared"})
        elif kind == "input_audio_buffer.commit":
            if len(self.audio_buffer) < 4800:  # the real service wants at least 100 ms
                self.audio_buffer.clear()
                await self.error(
                    "input_audio_buffer_commit_empty", "Error committing input audio buffer: buffer too small."
                )
                return
            item_id = new_id("item")
            self.last_committed_audio = bytes(self.audio_buffer)
            self.audio_buffer.clear()
            await self.send({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None})
            await self.send(
                {
                    "type": "conversation.item.added",
                    "item": {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_audio"}]},
                }
            )
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": self.server.user_transcript,
                }
            )
        elif kind == "conversation.item.create":
            item = dict(event.get("item") or {})
            item.setdefault("id", new_id("item"))
            self.items[item["id"]] = item
            await self.send({"type": "conversation.item.added", "item": item})
            await self.send({"type": "conversation.item.done", "item": item})
        elif kind == "conversation.item.delete":
            self.items.pop(event.get("item_id"), None)
            await self.send({"type": "conversation.item.deleted", "item_id": event.get("item_id")})
        elif kind == "conversation.item.truncate":
            await self.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": event.get("item_id"),
                    "content_index": event.get("content_index"),
                    "audio_end_ms": event.get("audio_end_ms"),
                }
            )
        elif kind == "response.cancel":
            if self.active_response is None:
                await self.error("response_cancel_not_active", "Cancellation failed: no active response found")
            else:
                response_id, self.active_response = self.active_response, None
                await self.send(
                    {"type": "response.done", "response": {"id": response_id, "status": "cancelled", "output": []}}
                )
        elif kind == "response.create":
            if self.active_response is not None:
                await self.error(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {self.active_response}.",
                )
                return
            responder = self.server.responders.popleft() if self.server.responders else echo_responder
            self.server.spawn(responder(self, event))


async def echo_responder(conn: FakeConnection, request: dict) -> None:
    await conn.speak(f"You said: {conn.server.user_transcript}", conn.last_committed_audio)


class FakeRealtime:
    """``async with FakeRealtime() as fake: fake.url`` -> ws://127.0.0.1:<port>/v1"""

    def __init__(self, *, api_key: str = "test-key", echo_audio: bool = False):
        self.api_key = api_key
        self.echo_audio = echo_audio
        self.user_transcript = "How many findings are there?"
        self.responders: deque[Responder] = deque()
        self.connections: list[FakeConnection] = []
        self.refused: list[str] = []
        self._connected = asyncio.Condition()
        self._tasks: set[asyncio.Task] = set()
        self._server = None

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1"

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> FakeRealtime:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, max_size=None, compression=None, process_request=self._check_request
        )
        return self

    async def __aexit__(self, *exc) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 5)

    def _check_request(self, connection, request):
        url = urlparse(request.path)
        if url.path != "/v1/realtime":
            self.refused.append(f"path {url.path}")
            return connection.respond(404, "Not found\n")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.refused.append("authorization")
            return connection.respond(401, "Bad key\n")
        return None

    async def _handler(self, ws) -> None:
        model = parse_qs(urlparse(ws.request.path).query).get("model", [None])[0]
        conn = FakeConnection(self, ws, model)
        async with self._connected:
            self.connections.append(conn)
            self._connected.notify_all()
        await conn.send(
            {
                "type": "session.created",
                "session": {"object": "realtime.session", "id": new_id("sess"), "type": "realtime", "model": model},
            }
        )
        try:
            async for raw in ws:
                event = json.loads(raw)
                async with conn.changed:
                    conn.received.append(event)
                    conn.changed.notify_all()
                await conn.handle(event)
        except Exception:  # noqa: BLE001 - a dropped client ends its connection, nothing more
            pass
        finally:
            conn.closed.set()

    async def connection(self, index: int = 0, *, timeout: float = 5.0) -> FakeConnection:
        """The ``index``-th connection (0 = first), waiting for it to arrive."""
        async with self._connected:
            await asyncio.wait_for(self._connected.wait_for(lambda: len(self.connections) > index), timeout)
        return self.connections[index]
