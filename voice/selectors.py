"""Reads for the voice copilot. Sessions are resolved through ``procedures.access``.

Who may talk: only the clinician who owns the session. Everyone else who may *see* the
session (QA reviewers, administrators, EHR connectors on signed sessions) is refused with
a "read-only" answer (close code 4403); anyone who may not see it gets "not found" (4404),
exactly as the pages do. The owner may still talk about a signed session; the tools that
change something then refuse, because the services refuse changes to a signed session.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet

from medvision.audit import log_access
from procedures import access

from .models import Conversation, Utterance, UtteranceRole

TALK_REFUSAL = "The voice copilot is for the clinician who owns this session; you can read its transcripts."


def talk_refusal(user, session) -> str | None:
    """Why ``user`` may not talk to the copilot about ``session`` (None when they may)."""
    if access.is_owner(user, session):
        return None
    return TALK_REFUSAL


def voice_session_get(*, user, session_id):
    """(session, refusal): the session if ``user`` may see it (else ``SessionNotFound``),
    and why they may not talk about it, if so. Opening the voice socket is audited."""
    session = access.get_visible_session(user, session_id)
    log_access(actor=user, instance=session, what="ws:voice")
    return session, talk_refusal(user, session)


def voice_configured() -> bool:
    return bool(settings.OPENAI_API_KEY)


def voice_panel_context(*, user, session) -> dict:
    """What ``templates/voice/panel.html`` needs (see the README's "Voice copilot")."""
    refusal = talk_refusal(user, session)
    return {
        "voice_session_id": str(session.pk),
        "voice_can_talk": refusal is None,
        "voice_refusal": refusal or "",
        "voice_configured": voice_configured(),
    }


def conversation_list(*, session) -> QuerySet[Conversation]:
    """Every voice conversation of ``session`` (already access-checked by the caller),
    oldest first, with its utterances prefetched in order."""
    return (
        Conversation.objects.filter(session=session)
        .select_related("user")
        .annotate(utterance_count=Count("utterances"))
        .prefetch_related(Prefetch("utterances", queryset=Utterance.objects.order_by("created_at", "id")))
        .order_by("started_at")
    )


def recent_transcript(*, conversation, limit: int = 20) -> list[Utterance]:
    """The last ``limit`` things said (clinician and assistant), oldest first: what a new
    upstream session is told after a reconnect."""
    rows = list(
        Utterance.objects.filter(conversation=conversation, role__in=[UtteranceRole.USER, UtteranceRole.ASSISTANT])
        .exclude(text="")
        .order_by("-created_at", "-id")[:limit]
    )
    rows.reverse()
    return rows
