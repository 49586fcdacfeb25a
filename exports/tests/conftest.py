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
    complete_report_unless_started(reviewed.session, actor=clinician)
    reviewed.session = workflow.session_sign(actor=clinician, session=reviewed.session)
    reviewed.proposed.refresh_from_db()
    return reviewed


def api_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


# Structured report ------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script> <b>bold</b> & co"

COLONOSCOPY_DATA = {
    "indication_kind": "surveillance",
    "indication_text": "Adenoma 3 years ago",
    "asa_class": "II",
    "sedation_level": "moderate",
    "sedation_agents": "Midazolam 2 mg",
    "complications": ["none"],
    "impression": "Two small adenomas removed.\nOtherwise normal colon.",
    "recommendations": "Await histology.",
    "extent": "terminal_ileum",
    "bbps_right": 2,
    "bbps_transverse": 3,
    "bbps_left": 3,
    "polyps": [
        {"id": "p1", "size_mm": 6, "paris": "0-Is", "nice": "2", "location": "sigmoid_colon",
         "resection": "cold_snare", "retrieved": True, "jar": "J1", "histology": "tubular_adenoma"},
        {"id": "p2", "size_mm": 4.5, "paris": "0-IIa", "location": "ascending_colon", "resection": "cold_snare",
         "retrieved": False, "jar": "", "histology": "pending"},
    ],
    "surveillance": {"suggested_months": 84, "suggested_rule": "1-2 tubular adenomas < 10 mm: repeat in 7-10 years",
                     "chosen_months": 36, "confirmed": True, "note": "Family history"},
}


@dataclass
class Structured:
    session: object
    record: object
    video: object
    marks: dict
    frames: list


@pytest.fixture
def structured(session, clinician, media_root):
    """A recorded colonoscopy with a complete structured report and its timeline marks
    (withdrawal 7:00; both cecal landmarks with a key frame)."""
    from procedures.models import Video
    from reporting.models import StructuredReport, TimelineMark

    video = Video.objects.create(session=session, number=1, sha256="a" * 64, file="videos/1.mp4", state="done",
                                 duration_s=900.0, size_bytes=1000)
    frames = [analysis_services.frame_create(session=session, source="live", timestamp_ms=ts, jpeg=jpeg_bytes(seed=s),
                                             width=64, height=48)
              for s, ts in ((7, 95_000), (8, 98_000))]
    record = StructuredReport.objects.create(session=session, data=COLONOSCOPY_DATA, updated_by=clinician)
    marks = {}
    for kind, ms, frame in (("cecum_reached", 100_000, None), ("appendiceal_orifice", 95_000, frames[0]),
                            ("ileocecal_valve", 98_000, frames[1]), ("scope_out", 520_000, None)):
        marks[kind] = TimelineMark.objects.create(session=session, kind=kind, time_ms=ms, video=video, frame=frame,
                                                  set_by=clinician)
    session.refresh_from_db()
    return Structured(session, record, video, marks, frames)


def complete_report_unless_started(session, *, actor):
    """Signing needs a complete structured report: give the session one unless a test made
    its own (``structured``)."""
    from reporting.models import StructuredReport
    from reporting.tests.factories import complete_report

    if not StructuredReport.objects.filter(session=session).exists():
        complete_report(session, actor=actor)


def sign(session, clinician):
    complete_report_unless_started(session, actor=clinician)
    return workflow.session_sign(actor=clinician, session=session)
