"""The model's tool calls alone: real tools and database, a recording upstream and
transcript in place of the consumer's."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async

from analysis.models import ReviewStatus
from analysis.tests.factories import FindingFactory
from voice.tool_calls import GpuClarify, ToolCalls
from voice.tools import ToolContext

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


class FakeUpstream:
    def __init__(self):
        self.conn = object()
        self.sent: list[dict] = []

    async def send(self, *events):
        if self.conn is None:
            return False
        self.sent.extend(events)
        return True


class FakeTranscript:
    def __init__(self):
        self.records: list[tuple[str, dict]] = []

    async def record(self, role, **fields):
        self.records.append((role, fields))


@pytest.fixture
def calls(session, clinician):
    """A ToolCalls of ``session``'s clinician, and what it sent to whom."""
    events: list[dict] = []

    async def send_event(event):
        events.append(event)

    tool_calls = ToolCalls(
        ctx=ToolContext(session_id=session.pk, user=clinician),
        upstream=FakeUpstream(),
        transcript=FakeTranscript(),
        send_event=send_event,
        spawn=asyncio.create_task,
        known_findings=set(),
    )
    tool_calls.browser = events
    return tool_calls


def function_call(name, arguments, *, response_id="resp_1", call_id="call_1") -> dict:
    return {
        "type": "response.function_call_arguments.done",
        "response_id": response_id,
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
    }


async def test_a_call_is_announced_run_answered_shown_and_recorded(calls, session):
    await database_sync_to_async(FindingFactory)(session=session, risk="high", label="Polyp")
    await calls.start(function_call("list_findings", {"risk": "high"}))
    assert calls.browser == [{"type": "tool", "name": "list_findings", "call_id": "call_1", "status": "running"}]

    (task,) = calls.take("resp_1")
    assert calls.take("resp_1") == []  # handed over once
    result = await task
    assert result["ok"] and result["count"] == 1

    (output,) = calls.upstream.sent
    assert output["item"]["type"] == "function_call_output" and output["item"]["call_id"] == "call_1"
    assert json.loads(output["item"]["output"]) == result
    assert calls.browser[-1] == {
        "type": "tool", "name": "list_findings", "call_id": "call_1", "status": "done", "ok": True,
        "summary": "list_findings: 1 finding(s)"}
    ((role, fields),) = calls.transcript.records
    assert role == "tool" and fields["tool_name"] == "list_findings" and fields["upstream_item_id"] == "call_1"
    assert fields["tool_arguments"] == {"risk": "high"} and fields["tool_result"] == result


async def test_calls_are_grouped_by_the_response_that_made_them(calls):
    await calls.start(function_call("session_summary", {}, response_id="resp_1", call_id="a"))
    await calls.start(function_call("session_summary", {}, response_id="resp_1", call_id="b"))
    await calls.start(function_call("session_summary", {}, response_id="resp_2", call_id="c"))
    first, second = calls.take("resp_1"), calls.take("resp_2")
    assert (len(first), len(second)) == (2, 1)
    assert calls.take(None) == [] and calls.take("resp_unknown") == []
    await asyncio.gather(*first, *second)
    assert sorted(o["item"]["call_id"] for o in calls.upstream.sent) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "name, args",
    [
        ("confirm_finding", {"confirmed_by_user": True}),
        ("reject_finding", {"confirmed_by_user": True}),
        ("add_note", {"text": "Clip placed."}),  # its result names the finding differently
    ],
)
async def test_a_finding_the_copilot_changed_is_known_to_the_relay_afterwards(calls, session, name, args):
    finding = await database_sync_to_async(FindingFactory)(session=session)
    result = await calls.run(calls.upstream.conn, name, "call_1", {"finding_id": str(finding.pk), **args})
    assert result["ok"], result
    assert calls.known_findings == {str(finding.pk)}


async def test_a_session_note_or_a_refused_review_changes_no_finding(calls, session):
    finding = await database_sync_to_async(FindingFactory)(session=session)
    assert (await calls.run(calls.upstream.conn, "add_note", "c1", {"text": "Prep adequate."}))["ok"]
    refused = await calls.run(calls.upstream.conn, "confirm_finding", "c2", {"finding_id": str(finding.pk)})
    assert refused["ok"] is False
    assert calls.known_findings == set()
    await database_sync_to_async(finding.refresh_from_db)()
    assert finding.review_status == ReviewStatus.PROPOSED


async def test_an_output_goes_only_to_the_connection_that_asked(calls):
    asked_on = calls.upstream.conn
    calls.upstream.conn = object()  # the service reconnected while the tool ran
    result = await calls.run(asked_on, "session_summary", "call_1", "{}")
    assert result["ok"] and calls.upstream.sent == []
    assert calls.browser[-1]["status"] == "done" and len(calls.transcript.records) == 1  # still shown, recorded


async def test_a_tool_the_model_made_up_is_refused_and_recorded(calls):
    result = await calls.run(calls.upstream.conn, "drop_tables", "call_1", '{"all": true}')
    assert result == {"ok": False, "error": "There is no tool called 'drop_tables'."}
    ((_, fields),) = calls.transcript.records
    assert fields["tool_arguments"] == {"raw": '{"all": true}'}
    assert calls.browser[-1]["ok"] is False and "refused" in calls.browser[-1]["summary"]


async def test_look_again_is_asked_of_the_gpu_worker_and_its_reply_awaited(monkeypatch):
    from analysis import tasks

    queued = []
    monkeypatch.setattr(tasks.analyze_clarify, "delay", lambda *args: queued.append(args))
    clarify = GpuClarify("voice.channel.1")
    asking = asyncio.create_task(clarify(SimpleNamespace(pk="frame-1"), "colonoscopy", "Regular margin?"))
    while not queued:
        await asyncio.sleep(0.01)
    ((frame_id, procedure_type, question, channel, request_id),) = queued
    assert (frame_id, procedure_type, question, channel) == ("frame-1", "colonoscopy", "Regular margin?",
                                                             "voice.channel.1")
    clarify.resolve({"request_id": "someone-else", "result": {"ok": True}})  # not ours: ignored
    assert not asking.done()
    clarify.resolve({"request_id": request_id, "result": {"ok": True, "answer": "Regular."}})
    assert await asking == {"ok": True, "answer": "Regular."}
    assert clarify.pending == {}
    clarify.resolve({"request_id": request_id, "result": {"ok": True}})  # a duplicate reply: harmless


async def test_look_again_without_a_reply_in_time_is_a_sentence_not_a_hang(monkeypatch):
    from analysis import tasks

    monkeypatch.setattr(tasks.analyze_clarify, "delay", lambda *args: None)
    clarify = GpuClarify("voice.channel.1", timeout_s=0.05)
    result = await clarify(SimpleNamespace(pk="frame-1"), "colonoscopy", "Regular margin?")
    assert result == {"ok": False, "error": "The image model did not answer in time; ask again in a moment."}
    assert clarify.pending == {}
