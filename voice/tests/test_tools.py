"""The assistant's tools: scoped to the socket's session, refusing what they must."""

from __future__ import annotations

import threading

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from analysis.engine import ClarifyAnswer, ClarifyResult
from analysis.models import ReviewStatus
from analysis.tests.factories import FindingFactory
from analysis.tests.fakes import PROVENANCE, jpeg_bytes
from procedures.tests.factories import ProcedureSessionFactory
from voice import tools
from voice.db import _isolated
from voice.tools import ToolContext, ToolError


def run(tool, ctx, args):
    """As the relay runs a tool: in the database thread's isolated audit context."""
    return _isolated(tool, (ctx, args), {})


@pytest.fixture
def ctx(session, clinician):
    return ToolContext(session_id=session.pk, user=clinician)


@pytest.fixture
def timeline(session):
    """Three findings of the session, deliberately created out of time order."""
    late = FindingFactory(session=session, risk="high", start_ms=90_000, end_ms=95_000, label="Late polyp")
    early = FindingFactory(session=session, risk="low", start_ms=1_000, end_ms=2_000, label="Early polyp")
    middle = FindingFactory(
        session=session, risk="high", start_ms=30_000, end_ms=31_000, label="Middle polyp", review_status="confirmed"
    )
    return early, middle, late


@pytest.mark.django_db
def test_list_findings_numbers_the_timeline_and_filters(ctx, timeline):
    early, middle, late = timeline
    everything = run(tools.list_findings, ctx, {})
    assert [(f["index"], f["id"]) for f in everything["findings"]] == [
        (1, str(early.pk)),
        (2, str(middle.pk)),
        (3, str(late.pk)),
    ]
    assert everything["findings"][0]["time"] == "00:01" and everything["findings"][2]["time"] == "01:30"
    high = run(tools.list_findings, ctx, {"risk": "high"})
    assert [f["index"] for f in high["findings"]] == [2, 3]  # still their timeline numbers
    proposed_high = run(tools.list_findings, ctx, {"risk": "high", "status": "proposed"})
    assert [f["label"] for f in proposed_high["findings"]] == ["Late polyp"]
    window = run(tools.list_findings, ctx, {"from_ms": 1_500, "to_ms": 30_000})
    assert [f["index"] for f in window["findings"]] == [1, 2]
    limited = run(tools.list_findings, ctx, {"limit": 1})
    assert limited["count"] == 3 and len(limited["findings"]) == 1 and limited["truncated"] is True


@pytest.mark.django_db
def test_list_findings_rejects_bad_filters(ctx):
    with pytest.raises(ToolError, match="risk must be one of"):
        run(tools.list_findings, ctx, {"risk": "extreme"})
    with pytest.raises(ToolError, match="limit must be between 1 and 50"):
        run(tools.list_findings, ctx, {"limit": 500})


@pytest.mark.django_db
def test_listing_is_audited_as_an_access(ctx, session, clinician):
    run(tools.list_findings, ctx, {})
    entry = LogEntry.objects.get_for_object(session).filter(action=LogEntry.Action.ACCESS).latest("timestamp")
    assert entry.actor == clinician and entry.additional_data["what"] == "voice:list_findings"


@pytest.mark.django_db
def test_describe_finding_by_index_or_id_only_within_the_session(ctx, timeline):
    early, middle, _ = timeline
    assert run(tools.describe_finding, ctx, {"index": 2})["finding"]["id"] == str(middle.pk)
    by_id = run(tools.describe_finding, ctx, {"finding_id": str(early.pk)})["finding"]
    assert by_id["index"] == 1 and by_id["description"] == "Small sessile lesion." and by_id["demo_model"] is True
    elsewhere = FindingFactory(session=ProcedureSessionFactory())
    with pytest.raises(ToolError, match="no finding with that id in this session"):
        run(tools.describe_finding, ctx, {"finding_id": str(elsewhere.pk)})
    with pytest.raises(ToolError, match="has 3 finding"):
        run(tools.describe_finding, ctx, {"index": 4})
    with pytest.raises(ToolError, match="Say which finding"):
        run(tools.describe_finding, ctx, {})


@pytest.mark.django_db
def test_session_summary_counts_what_is_recorded(ctx, timeline):
    summary = run(tools.session_summary, ctx, {})
    assert summary["findings"] == 3
    assert summary["by_risk"] == {"high": 2, "low": 1}
    assert summary["by_status"] == {"confirmed": 1, "proposed": 2}
    assert summary["demo_model_findings"] == 3 and summary["procedure_type"] == "Colonoscopy"


@pytest.mark.django_db
def test_add_note_appends_to_the_session_or_to_a_finding(ctx, session, clinician, timeline):
    session.notes = "Prep adequate."
    session.save()
    assert run(tools.add_note, ctx, {"text": "Cecum reached at 04:10."}) == {"ok": True, "added_to": "session notes"}
    session.refresh_from_db()
    assert session.notes == "Prep adequate.\nCecum reached at 04:10."
    result = run(tools.add_note, ctx, {"text": "Retrieved for histology.", "index": 1})
    early = timeline[0]
    early.refresh_from_db()
    assert result["added_to"] == "finding 1" and early.clinician_note == "Retrieved for histology."
    run(tools.add_note, ctx, {"text": "Clip placed.", "index": 1})
    early.refresh_from_db()
    assert early.clinician_note == "Retrieved for histology.\nClip placed."
    assert LogEntry.objects.get_for_object(early).latest("timestamp").actor == clinician
    with pytest.raises(ToolError, match="text is required"):
        run(tools.add_note, ctx, {"text": "  "})


@pytest.mark.django_db
@pytest.mark.parametrize("tool", [tools.confirm_finding, tools.reject_finding])
@pytest.mark.parametrize("flag", [None, False, "true", 1])
def test_review_tools_refuse_without_an_explicit_spoken_confirmation(ctx, timeline, tool, flag):
    args = {"index": 1} if flag is None else {"index": 1, "confirmed_by_user": flag}
    with pytest.raises(ToolError, match="confirmed_by_user true"):
        run(tool, ctx, args)
    timeline[0].refresh_from_db()
    assert timeline[0].review_status == ReviewStatus.PROPOSED


@pytest.mark.django_db
def test_reject_records_the_clinician_as_reviewer(ctx, clinician, timeline):
    result = run(tools.reject_finding, ctx, {"index": 3, "confirmed_by_user": True})
    late = timeline[2]
    late.refresh_from_db()
    assert result["ok"] and late.review_status == ReviewStatus.REJECTED and late.reviewed_by == clinician
    assert LogEntry.objects.get_for_object(late).latest("timestamp").actor == clinician


@pytest.mark.django_db
def test_tools_follow_the_access_rules_on_every_call(session, other_clinician, clinician):
    FindingFactory(session=session)
    stranger = ToolContext(session_id=session.pk, user=other_clinician)
    with pytest.raises(tools.access.SessionNotFound):
        run(tools.list_findings, stranger, {})
    session.status, session.signed_by, session.signed_at = "signed", clinician, timezone.now()
    session.save()
    owner = ToolContext(session_id=session.pk, user=clinician)
    with pytest.raises(tools.access.SessionReadOnly):
        run(tools.confirm_finding, owner, {"index": 1, "confirmed_by_user": True})
    assert run(tools.list_findings, owner, {})["count"] == 1  # reading a signed session is fine


class ThreadRecordingAnalyzer:
    def __init__(self):
        self.calls = []

    def clarify(self, frame, procedure_type, question):
        self.calls.append((threading.get_ident(), frame.timestamp_ms, procedure_type, question, frame.image.size))
        return ClarifyResult(
            frame_id=frame.frame_id,
            timestamp_ms=frame.timestamp_ms,
            question=question,
            ok=True,
            answer=ClarifyAnswer(
                answer="The margin looks regular.",
                confidence=0.4,
                relevant_category="polyp",
                relevant_location="sigmoid_colon",
                image_adequacy="adequate",
            ),
            error=None,
            raw_output="{}",
            provenance=PROVENANCE,
        )


@pytest.mark.django_db(transaction=True)
async def test_look_again_asks_the_analyzer_about_the_latest_frame_off_the_event_loop(
    ctx, session, media_root, monkeypatch
):
    from channels.db import database_sync_to_async

    from analysis.services import frame_create

    @database_sync_to_async
    def frames():
        frame_create(session=session, source="live", timestamp_ms=1000, jpeg=jpeg_bytes(seed=1), width=64, height=48)
        return frame_create(
            session=session, source="live", timestamp_ms=2500, jpeg=jpeg_bytes(seed=2), width=64, height=48
        )

    latest = await frames()
    analyzer = ThreadRecordingAnalyzer()
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: analyzer)
    args, result = await tools.execute(ctx, "look_again", '{"question": "Is the margin regular?"}')
    assert args == {"question": "Is the margin regular?"}
    assert result == {
        "ok": True,
        "frame_id": str(latest.pk),
        "frame_time": "00:02",
        "question": "Is the margin regular?",
        "model": "fake-analyzer",
        "demo_model": True,
        "answer": "The margin looks regular.",
        "confidence": 0.4,
        "relevant_category": "polyp",
        "relevant_location": "sigmoid_colon",
        "image_adequacy": "adequate",
    }
    ((thread, timestamp, procedure_type, question, size),) = analyzer.calls
    assert thread != threading.get_ident()  # not on the event loop's thread
    assert (timestamp, procedure_type, size) == (2500, "colonoscopy", (64, 48))


@pytest.mark.django_db(transaction=True)
async def test_execute_never_raises_on_a_bad_call(ctx):
    _, result = await tools.execute(ctx, "list_findings", "{not json")
    assert result == {"ok": False, "error": "The tool arguments were not valid JSON."}
    _, result = await tools.execute(ctx, "drop_tables", "{}")
    assert result["ok"] is False and "no tool called 'drop_tables'" in result["error"]
    _, result = await tools.execute(ctx, "look_again", '{"question": "What is this?"}')
    assert result == {"ok": False, "error": "This session has no frame to look at yet."}


def test_the_tools_offer_the_analysis_apps_vocabularies():
    from analysis.engine.schemas import RISK_LEVELS

    (list_tool,) = [t for t in tools.TOOL_DEFINITIONS if t["name"] == "list_findings"]
    properties = list_tool["parameters"]["properties"]
    assert properties["risk"]["enum"] == list(RISK_LEVELS) == ["low", "medium", "high"]
    assert properties["status"]["enum"] == ReviewStatus.values == ["proposed", "confirmed", "rejected", "edited"]


@pytest.mark.django_db
def test_a_described_finding_keeps_the_tools_own_field_names_over_finding_event(ctx, clinician, timeline):
    from analysis.serializers import finding_event

    early = timeline[0]
    run(tools.confirm_finding, ctx, {"index": 1, "confirmed_by_user": True})
    early.refresh_from_db()
    described = run(tools.describe_finding, ctx, {"index": 1})["finding"]
    assert list(described) == [
        "index", "id", "time", "start_ms", "end_ms", "category", "label", "location", "risk", "confidence",
        "status", "origin", "demo_model", "size_mm", "description", "suggested_next_step", "clinician_note",
        "reviewed_by", "reviewed_at", "model", "prompt_version",
    ]
    event = finding_event(early)
    assert described["status"] == event["review_status"] == "confirmed"
    assert described["demo_model"] is event["is_demo"] is True
    assert described["reviewed_by"] == clinician.get_username() and described["reviewed_at"] == event["reviewed_at"]
    assert (described["model"], described["prompt_version"]) == (
        event["provenance"]["model_id"], event["provenance"]["prompt_version"])
    listed = run(tools.list_findings, ctx, {})["findings"][0]
    assert listed == {k: described[k] for k in listed} and len(listed) == 13


def test_changed_finding_id_reads_each_write_tools_result():
    review = {"ok": True, "finding": {"id": "f1", "index": 1}, "recorded": "confirmed by dr"}
    assert tools.changed_finding_id("confirm_finding", review) == "f1"
    assert tools.changed_finding_id("reject_finding", review) == "f1"
    assert tools.changed_finding_id("add_note", {"ok": True, "added_to": "finding 2", "finding_id": "f2"}) == "f2"
    assert tools.changed_finding_id("add_note", {"ok": True, "added_to": "session notes"}) is None
    assert tools.changed_finding_id("confirm_finding", {"ok": False, "error": "Not recorded."}) is None
    assert tools.changed_finding_id("describe_finding", {"ok": True, "finding": {"id": "f1"}}) is None  # read only
