"""The upstream Realtime session alone: against the fake service, with a recording listener
in place of the consumer."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from analysis.tests.factories import FindingFactory
from voice import services, upstream
from voice.tools import ToolContext
from voice.upstream import Upstream

pytestmark = pytest.mark.timeout(30)

SETUP = {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}}


class Listener:
    """Records what the upstream tells the relay, in order."""

    def __init__(self):
        self.closing = False
        self.calls: list[tuple] = []
        self.changed = asyncio.Condition()
        self.fail_on: str | None = None  # an event type whose handling raises

    async def _note(self, *call):
        async with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    async def wait_for(self, name: str, count: int = 1, timeout: float = 5.0) -> list[tuple]:
        def enough():
            return len(self.of(name)) >= count

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(enough), timeout)
        return self.of(name)

    def of(self, name: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == name]

    async def upstream_ready(self, *, reconnected):
        await self._note("ready", reconnected)

    async def upstream_event(self, event):
        await self._note("event", event.get("type"))
        if event.get("type") == self.fail_on:
            raise RuntimeError("a bug in the relay's handling")

    def upstream_lost(self):
        self.calls.append(("lost",))

    async def upstream_down(self, message, *, retrying, after_session):
        await self._note("down", message, retrying, after_session)


@pytest.fixture
async def relay():
    """``listener, up, seeds = await relay(**options)``: an Upstream running in a task."""
    started: list[asyncio.Task] = []

    async def _start(**options):
        listener = Listener()
        seeds: list[bool] = []

        async def seed(reconnect):
            seeds.append(reconnect)
            return [SETUP]

        up = Upstream(listener, seed=seed, label="test", **options)
        started.append(asyncio.create_task(up.run()))
        return listener, up, seeds

    yield _start
    for task in started:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_connection_is_seeded_before_use_then_relays_both_ways(realtime, relay):
    listener, up, seeds = await relay()
    assert await up.send({"type": "response.create"}) is False  # nothing open yet
    await listener.wait_for("ready")
    conn = await realtime.connection(0)
    assert conn.model == "gpt-realtime"
    assert conn.received[0]["session"] == SETUP["session"] and seeds == [False]
    assert listener.calls[:2] == [("event", "session.created"), ("ready", False)]
    assert up.usable

    # Events from the service reach the listener; what the relay sends reaches the service
    await conn.send({"type": "input_audio_buffer.speech_stopped"})
    await listener.wait_for("event", 2)
    assert listener.calls[-1] == ("event", "input_audio_buffer.speech_stopped")
    assert await up.send({"type": "input_audio_buffer.clear"}) is True
    await conn.wait_for("input_audio_buffer.clear")
    assert await up.send_raw('{"type":"input_audio_buffer.append","audio":"AAA="}') is True
    await conn.wait_for("input_audio_buffer.append")


async def test_after_the_service_ends_a_session_it_reconnects_and_says_so(realtime, relay):
    listener, up, seeds = await relay(delays=(0.0,))
    await listener.wait_for("ready")
    first = await realtime.connection(0)
    await first.close(1000, "session limit")

    (down,) = await listener.wait_for("down")
    assert down == ("down", "The voice service closed the connection.", True, True)
    assert ("lost",) in listener.calls
    ready = await listener.wait_for("ready", 2)
    assert ready[1] == ("ready", True)
    assert seeds == [False, True]  # the second connection is seeded as a reconnect
    second = await realtime.connection(1)
    assert second.received[0]["type"] == "session.update"
    assert await up.send({"type": "response.create"}) is True
    await second.wait_for("response.create")


async def test_it_gives_up_when_the_service_stays_away(realtime, relay):
    listener, up, _ = await relay(delays=(0.0, 0.0))
    await listener.wait_for("ready")
    await realtime.__aexit__(None, None, None)  # the service goes away entirely

    downs = await listener.wait_for("down", 3)
    assert [d[2:] for d in downs] == [(True, True), (True, False), (False, False)]
    assert "cannot be reached" in downs[-1][1]
    await asyncio.sleep(0.1)
    assert len(listener.of("down")) == 3  # and that was the end of it
    assert not up.usable and up.conn is None


async def test_a_refused_key_is_not_retried(realtime, relay, settings):
    settings.OPENAI_API_KEY = "wrong-key"
    listener, up, seeds = await relay()
    (down,) = await listener.wait_for("down")
    assert down[2:] == (False, False) and up.conn is None
    assert "OPENAI_API_KEY" in down[1] and "401" in down[1]
    assert realtime.refused == ["authorization"] and seeds == []


@pytest.mark.parametrize("healthy_s, third_connection", [(0.0, True), (3600.0, False)])
async def test_only_a_session_that_lasted_is_replaced_without_counting_a_failure(
    realtime, relay, healthy_s, third_connection
):
    # One retry allowed after a failure: two sessions dropped at once in a row are too many,
    # unless each had lasted long enough to count as healthy.
    listener, _, _ = await relay(delays=(0.0,), healthy_s=healthy_s)
    for n in range(2):
        await listener.wait_for("ready", n + 1)
        await (await realtime.connection(n)).close(1000, "dropped")
        await listener.wait_for("down", n + 1)
    assert [d[2] for d in listener.of("down")] == [True, third_connection]
    if third_connection:
        await realtime.connection(2)
    else:
        await asyncio.sleep(0.1)
        assert len(realtime.connections) == 2


def test_a_reconnect_policy_needs_a_delay():
    with pytest.raises(ValueError, match="at least one"):
        Upstream(Listener(), seed=None, delays=())


async def test_a_failure_handling_one_event_costs_a_connection_not_the_relay(realtime, relay):
    listener, _, _ = await relay(delays=(0.0,))
    listener.fail_on = "boom"
    await listener.wait_for("ready")
    await (await realtime.connection(0)).send({"type": "boom"})
    (down,) = await listener.wait_for("down")
    assert down[2:] == (True, True)
    await listener.wait_for("ready", 2)


async def test_once_the_relay_is_closing_a_lost_connection_is_not_replaced(realtime, relay):
    listener, _, _ = await relay(delays=(0.0,))
    await listener.wait_for("ready")
    listener.closing = True
    await (await realtime.connection(0)).close(1000, "bye")
    await asyncio.sleep(0.2)
    assert listener.of("down") == [] and len(realtime.connections) == 1
    assert listener.calls[-1] == ("lost",)


async def test_cancelling_the_run_closes_the_connection(realtime):
    listener = Listener()

    async def seed(reconnect):
        return [SETUP]

    up = Upstream(listener, seed=seed)
    task = asyncio.create_task(up.run())
    await listener.wait_for("ready")
    conn = await realtime.connection(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.wait_for(conn.closed.wait(), 5)
    assert up.conn is None and listener.calls[-1] == ("lost",)
    assert await up.send({"type": "response.create"}) is False and await up.send_raw("{}") is False


def test_system_items_are_messages_the_model_reads():
    assert upstream.system_item("Note.") == {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Note."}]},
    }
    assert upstream.system_item("Note.", "mv_1")["item"]["id"] == "mv_1"


@pytest.mark.django_db(transaction=True)
async def test_the_seed_has_the_sessions_counts_and_after_a_reconnect_the_transcript(session, clinician):
    await database_sync_to_async(FindingFactory)(session=session, risk="high")

    @database_sync_to_async
    def conversation_with_history():
        conversation = services.conversation_start(actor=clinician, session=session, model="gpt-realtime")
        services.utterance_record(actor=clinician, conversation=conversation, role="user", text="Cecum reached.")
        services.utterance_record(actor=clinician, conversation=conversation, role="tool", text="add_note: ...")
        services.utterance_record(actor=clinician, conversation=conversation, role="assistant", text="Noted.")
        return conversation

    conversation = await conversation_with_history()
    ctx = ToolContext(session_id=session.pk, user=clinician)
    modes = iter(["ptt"])

    fresh = await upstream.seed_events(ctx, conversation, mode=lambda: next(modes), reconnect=False)
    assert [e["type"] for e in fresh] == ["session.update"]
    config = fresh[0]["session"]
    assert "1 finding(s)" in config["instructions"] and "risk high 1" in config["instructions"]
    assert config["audio"]["input"]["turn_detection"] is None  # the mode as it is when the seed is sent
    assert {t["name"] for t in config["tools"]} >= {"list_findings", "add_note", "look_again"}

    again = await upstream.seed_events(ctx, conversation, mode=lambda: "vad", reconnect=True)
    assert [e["type"] for e in again] == ["session.update", "conversation.item.create"]
    recap = again[1]["item"]["content"][0]["text"]
    assert "Clinician: Cecum reached.\nAssistant: Noted." in recap and "add_note" not in recap
