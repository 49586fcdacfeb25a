"""A session as a clinician leaves it after review: frames with JPEGs, findings in every
review state (one with a label that tries formula injection), a voice conversation."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analysis import services as analysis_services
from analysis.models import Finding
from analysis.tests.factories import FindingFactory
from analysis.tests.fakes import jpeg_bytes
from procedures import services as procedure_services
from procedures import workflow

INJECTION = "=cmd|' /C calc'!A0"


@dataclass
class Reviewed:
    session: object
    confirmed: Finding
    edited: Finding
    rejected: Finding
    proposed: Finding
    frames: list


def _frame(session, ts, seed):
    return analysis_services.frame_create(session=session, source="live", timestamp_ms=ts, jpeg=jpeg_bytes(seed=seed),
                                          width=64, height=48)


@pytest.fixture
def reviewed(session, clinician, media_root):
    from voice.models import Conversation, Utterance

    procedure_services.session_update(actor=clinician, session=session, notes="Prep adequate; Boston 8.",
                                      encounter_ref="ENC-77")
    frames = [_frame(session, ts, seed) for seed, ts in enumerate((1500, 62_250, 3_723_004))]
    confirmed = FindingFactory(session=session, frame=frames[0], label=INJECTION, start_ms=1500, end_ms=2500,
                               risk="high", size_mm=6.5, description="+ sessile lesion", model_revision="rev-1")
    edited = FindingFactory(session=session, frame=frames[1], start_ms=62_250, end_ms=64_000, category="ulcer",
                            location="rectum", label="Ulcer", risk="medium")
    rejected = FindingFactory(session=session, frame=frames[2], start_ms=3_723_004, end_ms=3_723_004,
                              label="Bubble", risk="low")
    proposed = FindingFactory(session=session, frame=None, start_ms=90_000, end_ms=90_000, label="@SUM(A1)",
                              category="bleeding", risk="medium")
    analysis_services.finding_review(actor=clinician, finding=confirmed, status="confirmed", note="-2 mm margin")
    analysis_services.finding_review(actor=clinician, finding=edited, corrections={"size_mm": 12.0, "label": "Ulcer"})
    analysis_services.finding_review(actor=clinician, finding=rejected, status="rejected")
    conversation = Conversation.objects.create(session=session, user=clinician, model="gpt-realtime-test")
    Utterance.objects.create(conversation=conversation, role="user", text="How big is the polyp?")
    Utterance.objects.create(conversation=conversation, role="tool", tool_name="list_findings",
                             tool_arguments={"risk": "high"}, tool_result={"count": 1})
    Utterance.objects.create(conversation=conversation, role="assistant", text="About 6.5 mm (AI estimate).")
    for f in (confirmed, edited, rejected, proposed):
        f.refresh_from_db()
    session.refresh_from_db()
    return Reviewed(session, confirmed, edited, rejected, proposed, frames)


@pytest.fixture
def signed(reviewed, clinician):
    analysis_services.finding_review(actor=clinician, finding=reviewed.proposed, status="rejected")
    reviewed.session = workflow.session_sign(actor=clinician, session=reviewed.session)
    reviewed.proposed.refresh_from_db()
    return reviewed


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client
