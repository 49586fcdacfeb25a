"""Writes of voice conversations. Each runs in a transaction and is attributed to its actor,
so the audit log names the clinician for every utterance and tool call recorded."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from medvision.audit import acting_as

from .models import Conversation, Utterance, UtteranceRole

# Utterance text is free text from a model or a microphone: bound what one row may hold.
MAX_TEXT_CHARS = 20000


class ConversationFull(Exception):
    """The conversation holds VOICE_MAX_UTTERANCES entries; nothing more is recorded in it."""


def conversation_start(*, actor, session, model: str) -> Conversation:
    with transaction.atomic(), acting_as(actor):
        return Conversation.objects.create(session=session, user=actor, model=model[:100])


def conversation_end(*, actor, conversation: Conversation) -> None:
    with transaction.atomic(), acting_as(actor):
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.ended_at is None:
            conversation.ended_at = timezone.now()
            conversation.save(update_fields=["ended_at"])


def conversation_count_reconnect(*, actor, conversation: Conversation) -> None:
    with transaction.atomic(), acting_as(actor):
        Conversation.objects.filter(pk=conversation.pk).update(reconnects=F("reconnects") + 1)


def utterance_record(
    *,
    actor,
    conversation: Conversation,
    role: str,
    text: str = "",
    upstream_item_id: str = "",
    tool_name: str = "",
    tool_arguments=None,
    tool_result=None,
    interrupted_at_ms: int | None = None,
) -> Utterance:
    if role not in UtteranceRole.values:
        raise ValueError(f"Unknown utterance role {role!r}.")
    from django.conf import settings

    with transaction.atomic(), acting_as(actor):
        # A looping upstream once wrote 16,723 entries in two minutes: a conversation is
        # bounded, and the consumer ends it when the bound is reached.
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        if Utterance.objects.filter(conversation=conversation).count() >= settings.VOICE_MAX_UTTERANCES:
            raise ConversationFull(
                f"This conversation reached its limit of {settings.VOICE_MAX_UTTERANCES} entries; "
                "reconnect the copilot to start a new one."
            )
        return Utterance.objects.create(
            conversation=conversation,
            role=role,
            text=(text or "")[:MAX_TEXT_CHARS],
            upstream_item_id=(upstream_item_id or "")[:100],
            tool_name=(tool_name or "")[:64],
            tool_arguments=tool_arguments,
            tool_result=tool_result,
            interrupted_at_ms=interrupted_at_ms,
        )


def utterance_mark_interrupted(*, actor, conversation: Conversation, upstream_item_id: str, audio_end_ms: int) -> int:
    """The clinician talked over this assistant utterance after ``audio_end_ms`` of it had
    played. Returns how many rows were marked (0 when it is not recorded yet)."""
    with transaction.atomic(), acting_as(actor):
        marked = 0
        for utterance in Utterance.objects.select_for_update().filter(
            conversation=conversation, role=UtteranceRole.ASSISTANT, upstream_item_id=upstream_item_id
        ):
            utterance.interrupted_at_ms = audio_end_ms
            utterance.save(update_fields=["interrupted_at_ms"])  # save(), not update(): audited
            marked += 1
        return marked
