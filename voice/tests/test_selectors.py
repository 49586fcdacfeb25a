"""Who may talk, what the panel needs, and reading conversations back."""

import pytest
from auditlog.models import LogEntry

from procedures.access import SessionNotFound
from voice import selectors, services
from voice.db import _isolated


@pytest.mark.django_db
def test_only_the_owning_clinician_may_talk(session, clinician, qa_user, admin_user, other_clinician, connector):
    assert selectors.talk_refusal(clinician, session) is None
    for reader in (qa_user, admin_user):
        found, refusal = selectors.voice_session_get(user=reader, session_id=session.pk)
        assert found == session and refusal == selectors.TALK_REFUSAL
    for stranger in (other_clinician, connector):
        with pytest.raises(SessionNotFound):
            selectors.voice_session_get(user=stranger, session_id=session.pk)


@pytest.mark.django_db
def test_opening_the_voice_socket_is_audited(session, clinician):
    selectors.voice_session_get(user=clinician, session_id=session.pk)
    entry = LogEntry.objects.get_for_object(session).get(action=LogEntry.Action.ACCESS)
    assert entry.actor == clinician and entry.additional_data == {"what": "ws:voice"}


@pytest.mark.django_db
def test_panel_context_says_whether_the_user_may_talk_and_the_server_is_configured(
    session, clinician, qa_user, settings
):
    settings.OPENAI_API_KEY = ""
    assert selectors.voice_panel_context(user=clinician, session=session) == {
        "voice_session_id": str(session.pk),
        "voice_can_talk": True,
        "voice_refusal": "",
        "voice_configured": False,
    }
    settings.OPENAI_API_KEY = "sk-test"
    qa = selectors.voice_panel_context(user=qa_user, session=session)
    assert (
        qa["voice_can_talk"] is False and qa["voice_configured"] is True and "owns this session" in qa["voice_refusal"]
    )


@pytest.mark.django_db
def test_conversation_list_and_recent_transcript(session, clinician, django_assert_max_num_queries):
    def record(conversation, role, text):
        return _isolated(
            services.utterance_record,
            (),
            {"actor": clinician, "conversation": conversation, "role": role, "text": text},
        )

    first = services.conversation_start(actor=clinician, session=session, model="gpt-realtime")
    second = services.conversation_start(actor=clinician, session=session, model="gpt-realtime")
    for i in range(5):
        record(first, "user", f"question {i}")
        record(first, "assistant", f"answer {i}")
    record(first, "tool", "list_findings: 0 finding(s)")
    record(first, "system", "New finding recorded")
    with django_assert_max_num_queries(2):
        conversations = list(selectors.conversation_list(session=session))
        assert [len(c.utterances.all()) for c in conversations] == [12, 0]
    assert [c.pk for c in conversations] == [first.pk, second.pk]
    recap = selectors.recent_transcript(conversation=first, limit=3)
    assert [u.text for u in recap] == ["answer 3", "question 4", "answer 4"]
