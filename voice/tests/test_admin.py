"""QA reads transcripts in admin; nobody changes them there."""

import pytest
from django.urls import reverse

from voice import services


@pytest.mark.django_db
def test_qa_reads_a_conversation_with_its_utterances_and_cannot_change_it(client, session, clinician, qa_user):
    from medvision import roles  # noqa: F401 - groups exist through the migration

    conversation = services.conversation_start(actor=clinician, session=session, model="gpt-realtime")
    services.utterance_record(
        actor=clinician,
        conversation=conversation,
        role="tool",
        text="confirm_finding: ok",
        tool_name="confirm_finding",
        tool_arguments={"index": 1, "confirmed_by_user": True},
    )
    client.force_login(qa_user)
    listing = client.get(reverse("admin:voice_conversation_changelist"))
    assert listing.status_code == 200 and str(conversation.pk) in listing.content.decode()
    page = client.get(reverse("admin:voice_conversation_change", args=[conversation.pk]))
    assert page.status_code == 200 and "confirm_finding" in page.content.decode()
    assert client.post(reverse("admin:voice_conversation_delete", args=[conversation.pk])).status_code == 403
