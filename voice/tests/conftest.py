"""Voice test fixtures: a fake Realtime server on loopback and a browser-side client."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from medvision.routing import websocket_urlpatterns
from medvision.ws_auth import WebSocketAuthStack
from testing import servers as testing

from .fake_realtime import FakeRealtime

TIMEOUT = 5.0


@pytest.fixture(autouse=True)
def _never_the_real_service(settings):
    """Whatever the environment says, no test may reach OpenAI: no key unless a test sets
    one, and a base URL on loopback where nothing listens."""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_REALTIME_BASE_URL = "ws://127.0.0.1:9/v1"
    settings.OPENAI_REALTIME_MODEL = "gpt-realtime"


@pytest.fixture
async def fake_realtime():
    async with FakeRealtime() as fake:
        yield fake


@pytest.fixture
def realtime(settings, fake_realtime):
    """The relay configured against the fake server."""
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_REALTIME_BASE_URL = fake_realtime.url
    return fake_realtime


session_cookie_for = database_sync_to_async(testing.session_cookie_for)


class Browser:
    """The page's side of the voice socket: JSON events and binary audio, kept apart."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.events: list[dict] = []
        self.audio = bytearray()
        self.audio_chunks = 0
        self.closed_with = None
        self.read_ahead: list[dict] = []  # events read before a test asked for them

    async def next(self, kind: str | None = None, predicate=lambda e: True, *, timeout: float = TIMEOUT) -> dict:
        """The next JSON event (of type ``kind``), collecting audio on the way."""
        while self.read_ahead:
            event = self.read_ahead.pop(0)
            if (kind is None or event.get("type") == kind) and predicate(event):
                return event
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind or 'event'} within {timeout} s; got {[e['type'] for e in self.events]}")
            message = await self.communicator.receive_output(timeout=remaining)
            if message["type"] == "websocket.close":
                self.closed_with = message.get("code")
                raise ConnectionError(f"socket closed with {self.closed_with}; events {self.events}")
            if message.get("bytes") is not None:
                self.audio += message["bytes"]
                self.audio_chunks += 1
                continue
            event = json.loads(message["text"])
            self.events.append(event)
            if (kind is None or event.get("type") == kind) and predicate(event):
                return event

    async def until_audio(self, n_bytes: int, *, timeout: float = TIMEOUT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.audio) < n_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"got {len(self.audio)} of {n_bytes} audio bytes")
            message = await self.communicator.receive_output(timeout=remaining)
            if message.get("bytes") is not None:
                self.audio += message["bytes"]
                self.audio_chunks += 1
            elif message["type"] == "websocket.send":
                self.events.append(json.loads(message["text"]))
            else:
                raise ConnectionError(f"socket closed: {message}")

    async def send(self, event: dict) -> None:
        await self.communicator.send_to(text_data=json.dumps(event))

    async def send_audio(self, pcm: bytes) -> None:
        await self.communicator.send_to(bytes_data=pcm)

    async def ready(self) -> dict:
        return await self.next("status", lambda e: e.get("state") == "ready")

    async def close(self) -> None:
        await self.communicator.disconnect(timeout=TIMEOUT)


@pytest.fixture
async def open_voice():
    """``browser = await open_voice(session, user)``: connected (or the close code)."""
    opened: list[Browser] = []

    async def _open(session, user, *, expect_accept: bool = True, origin: bytes = b"http://localhost"):
        headers = [(b"origin", origin), (b"host", b"localhost")]
        if user is not None:
            headers.append((b"cookie", await session_cookie_for(user)))
        communicator = WebsocketCommunicator(
            WebSocketAuthStack(URLRouter(websocket_urlpatterns)), f"/ws/procedures/{session.pk}/voice/", headers=headers
        )
        connected, code = await communicator.connect(timeout=TIMEOUT)
        if not connected:
            return f"handshake refused ({code})"
        refused, first = await testing.refusal_or_first_event(communicator, TIMEOUT)
        if refused is not None:
            return refused
        browser = Browser(communicator)
        browser.events.append(first)
        browser.read_ahead.append(first)
        opened.append(browser)
        return browser

    yield _open
    for browser in opened:
        try:
            await browser.close()
        except Exception:  # noqa: BLE001 - already closed by the test or the server
            pass
