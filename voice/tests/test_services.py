"""Recording conversations: every row is audited under the clinician's name."""

import pytest
from auditlog.models import LogEntry

from voice import services
from voice.db import _isolated
from voice.models import Utterance


def isolated(fn, **kwargs):
    return _isolated(fn, (), kwargs)


@pytest.mark.django_db
def test_utterances_are_recorded_and_audited_with_the_clinician(session, clinician):
    conversation = isolated(services.conversation_start, actor=clinician, session=session, model="gpt-realtime")
    said = isolated(services.utterance_record, actor=clinician, conversation=conversation, role="user", text="Hello")
    tool = isolated(
        services.utterance_record,
        actor=clinician,
        conversation=conversation,
        role="tool",
        text="list_findings: 0 finding(s)",
        tool_name="list_findings",
        tool_arguments={"risk": "high"},
        tool_result={"ok": True, "count": 0},
    )
    isolated(services.conversation_end, actor=clinician, conversation=conversation)
    for obj in (conversation, said, tool):
        assert LogEntry.objects.get_for_object(obj).get(action=LogEntry.Action.CREATE).actor == clinician
    conversation.refresh_from_db()
    assert conversation.ended_at is not None
    assert LogEntry.objects.get_for_object(conversation).get(action=LogEntry.Action.UPDATE).actor == clinician


@pytest.mark.django_db
def test_an_interruption_is_marked_on_the_assistant_utterance(session, clinician):
    conversation = isolated(services.conversation_start, actor=clinician, session=session, model="m")
    isolated(
        services.utterance_record,
        actor=clinician,
        conversation=conversation,
        role="assistant",
        text="A long answer",
        upstream_item_id="item_1",
    )
    assert (
        isolated(
            services.utterance_mark_interrupted,
            actor=clinician,
            conversation=conversation,
            upstream_item_id="item_1",
            audio_end_ms=820,
        )
        == 1
    )
    assert Utterance.objects.get(upstream_item_id="item_1").interrupted_at_ms == 820
    assert (
        isolated(
            services.utterance_mark_interrupted,
            actor=clinician,
            conversation=conversation,
            upstream_item_id="item_unknown",
            audio_end_ms=10,
        )
        == 0
    )


@pytest.mark.django_db
def test_it_refuses_an_unknown_role_and_bounds_text(session, clinician):
    conversation = services.conversation_start(actor=clinician, session=session, model="m")
    with pytest.raises(ValueError, match="Unknown utterance role"):
        services.utterance_record(actor=clinician, conversation=conversation, role="narrator", text="x")
    long = services.utterance_record(actor=clinician, conversation=conversation, role="user", text="x" * 30000)
    assert len(long.text) == services.MAX_TEXT_CHARS


def test_a_conversation_holds_at_most_the_configured_number_of_entries(session, clinician, settings):
    """A looping upstream once wrote 16,723 entries in two minutes."""
    from voice.models import Utterance

    settings.VOICE_MAX_UTTERANCES = 10
    conversation = services.conversation_start(actor=clinician, session=session, model="m")
    for index in range(10):
        services.utterance_record(actor=clinician, conversation=conversation, role="user", text=f"{index}")
    with pytest.raises(services.ConversationFull, match="limit of 10 entries"):
        services.utterance_record(actor=clinician, conversation=conversation, role="user", text="one too many")
    assert Utterance.objects.filter(conversation=conversation).count() == 10
