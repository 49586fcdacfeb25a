"""The conversation's record, written from the event loop: real database, no socket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from voice import services
from voice.models import Conversation, Utterance
from voice.transcript import Transcript

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


@database_sync_to_async
def said(conversation):
    return [
        (u.role, u.text, u.upstream_item_id, u.interrupted_at_ms)
        for u in Utterance.objects.filter(conversation=conversation).order_by("created_at", "id")
    ]


@pytest.fixture
async def transcript(session, clinician):
    conversation = await database_sync_to_async(services.conversation_start)(
        actor=clinician, session=session, model="gpt-realtime"
    )
    full: list[Exception] = []
    interrupted = {"item_a": 640}

    async def on_full(exc):
        full.append(exc)

    t = Transcript(user=clinician, conversation=conversation, on_full=on_full, interrupted_at=interrupted.get)
    t.full = full
    return t


async def test_the_clinicians_words_are_recorded_when_transcribed(transcript):
    await transcript.heard({"type": "conversation.item.input_audio_transcription.completed", "item_id": "u1",
                            "transcript": "How many findings?"})
    await transcript.heard({"type": "conversation.item.input_audio_transcription.completed", "item_id": "u2",
                            "transcript": "   "})  # silence transcribed: nothing to keep
    await transcript.heard({"type": "input_audio_buffer.speech_stopped"})  # not words at all
    assert await said(transcript.conversation) == [("user", "How many findings?", "u1", None)]


async def test_assistant_speech_is_recorded_once_when_done_with_how_much_was_heard(transcript):
    for delta in ("Two ", "findings."):
        await transcript.heard({"type": "response.output_audio_transcript.delta", "item_id": "item_a",
                                "delta": delta})
    assert await said(transcript.conversation) == []  # not yet: the transcript is not done
    await transcript.heard({"type": "response.output_audio_transcript.done", "item_id": "item_a",
                            "transcript": "Two findings."})
    await transcript.flush()  # nothing left over, and item_a is not recorded twice
    await transcript.assistant("item_a", "Two findings.")
    assert await said(transcript.conversation) == [("assistant", "Two findings.", "item_a", 640)]


async def test_speech_cut_off_before_its_transcript_was_done_is_recorded_by_a_flush(transcript):
    await transcript.heard({"type": "response.output_text.delta", "item_id": "item_b", "delta": "The polyp at"})
    await transcript.heard({"type": "response.output_text.delta", "item_id": "item_c", "delta": ""})
    await transcript.flush()
    await transcript.flush()  # a second flush has nothing to add
    assert await said(transcript.conversation) == [("assistant", "The polyp at", "item_b", None)]


async def test_a_full_conversation_calls_on_full_and_keeps_nothing_more(transcript, settings):
    settings.VOICE_MAX_UTTERANCES = 1
    await transcript.record("user", text="One.")
    await transcript.record("user", text="Two.")
    assert len(transcript.full) == 1 and isinstance(transcript.full[0], services.ConversationFull)
    assert [row[1] for row in await said(transcript.conversation)] == ["One."]


async def test_interruptions_reconnects_and_the_end_are_written(transcript):
    await transcript.heard({"type": "response.output_audio_transcript.done", "item_id": "item_z",
                            "transcript": "A long answer."})
    await transcript.mark_interrupted("item_z", 1200)
    await transcript.count_reconnect()
    await transcript.count_reconnect()
    await transcript.end()
    assert (await said(transcript.conversation))[0][3] == 1200
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=transcript.conversation.pk)
    assert conversation.reconnects == 2 and conversation.ended_at is not None
