"""The includes the session page uses: the panel and the transcripts."""

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from procedures.tests.factories import ProcedureSessionFactory
from voice import services


def render(source, **context):
    return Template("{% load voice_tags %}" + source).render(Context(context))


@pytest.mark.django_db
def test_the_panel_offers_the_copilot_to_the_owner_when_configured(session, clinician, settings):
    settings.OPENAI_API_KEY = "sk-test"
    request = RequestFactory().get("/")
    request.user = clinician
    html = render("{% voice_panel session %}", request=request, session=session)
    assert 'id="voice-start"' in html and f'data-session="{session.pk}"' in html
    assert 'data-can-talk="true"' in html and "js/voice.js" in html and "js/audio-worklet.js" in html
    assert "sk-test" not in html


@pytest.mark.django_db
def test_the_panel_explains_why_it_is_off(session, clinician, qa_user, settings):
    settings.OPENAI_API_KEY = ""
    request = RequestFactory().get("/")
    request.user = clinician
    html = render("{% voice_panel session %}", request=request, session=session)
    assert "OPENAI_API_KEY is not set" in html and 'id="voice-start"' not in html
    settings.OPENAI_API_KEY = "sk-test"
    request.user = qa_user
    html = render("{% voice_panel session %}", request=request, session=session)
    assert "owns this session" in html and 'id="voice-start"' not in html


@pytest.mark.django_db
def test_transcripts_are_shown_escaped_with_tool_calls_and_interruptions(session, clinician):
    conversation = services.conversation_start(actor=clinician, session=session, model="gpt-realtime")
    services.utterance_record(actor=clinician, conversation=conversation, role="user", text="<script>alert(1)</script>")
    services.utterance_record(
        actor=clinician, conversation=conversation, role="assistant", text="Sure.", interrupted_at_ms=640
    )
    services.utterance_record(
        actor=clinician, conversation=conversation, role="tool", text="list_findings: 2", tool_name="list_findings"
    )
    html = render("{% voice_transcripts session %}", session=session)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "interrupted after 640 ms" in html and "<code>list_findings</code>" in html and "3 entries" in html
    assert "No voice conversations" in render("{% voice_transcripts session %}", session=ProcedureSessionFactory())
