"""Reads for exports: one consistent snapshot of a session that every builder renders.

Callers pass a session they resolved through ``procedures.access`` (the export services
check visibility again), so a builder never decides who may see what.

What a document shows:
- a signed session exports as FINAL and shows only the findings in the signed report
  (confirmed or edited); rejected proposals appear only as counts;
- an unsigned session exports as PRELIMINARY and shows every finding with its status.
A signed session never changes again, so reading the session before its findings cannot
pair a "signed" status with findings from before the sign-off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from analysis.models import Finding, Frame, ReviewStatus
from analysis.selectors import REPORT_STATUSES
from procedures.models import ProcedureSession, Video
from procedures.selectors import procedure_date as session_procedure_date
from reporting.models import StructuredReport, TimelineMark

from .models import Export
from .structured import structured_view

PROVENANCE_KEYS = ("backend", "model_id", "model_revision", "prompt_version", "is_demo")


@dataclass
class ConversationTranscript:
    id: str
    user: str
    model: str
    started_at: datetime | None
    ended_at: datetime | None
    utterances: list = field(default_factory=list)


@dataclass
class ExportSnapshot:
    session: ProcedureSession
    is_final: bool
    findings: list[Finding]
    review_counts: dict[str, int]
    key_frames: dict[str, Frame]  # frame id -> frame with a stored JPEG, for the shown findings
    videos: list[Video]
    # Voice conversations up to the signature (all of them before one); what was said after
    # sign-off is an addendum, never part of the signed documents.
    conversations: list[ConversationTranscript]
    addenda: list
    provenance: list[dict]
    exported_at: datetime
    exported_by: str
    conversations_after_signing: list[ConversationTranscript] = field(default_factory=list)
    # The clinician's structured report (None when there is none) and the timeline marks
    # (with their recording and key frame loaded); ``structured`` is their rendered form.
    structured_record: object | None = None
    marks: list = field(default_factory=list)

    @property
    def structured(self):
        if not hasattr(self, "_structured"):
            self._structured = structured_view(session=self.session, record=self.structured_record,
                                               marks=self.marks, is_final=self.is_final)
        return self._structured

    @property
    def landmark_frames(self) -> dict[str, Frame]:
        """Frame id -> frame of the cecal landmarks' key frames (stored images only)."""
        return {str(m.frame.pk): m.frame for m in self.structured.landmark_frames}

    @property
    def procedure_date(self) -> tuple[str, datetime | None, str]:
        """(label, when, source) of the procedure's date: the session's start; for a recorded
        session that never started live, the first recording's upload time, said as such."""
        when, source = session_procedure_date(self.session, self.videos)
        return ("Recorded (uploaded)" if source == "recording_uploaded_at" else "Started"), when, source

    @property
    def document_status(self) -> str:
        return "final" if self.is_final else "preliminary"

    @property
    def contains_demo_output(self) -> bool:
        return any(p["is_demo"] for p in self.provenance) or any(f.is_demo for f in self.findings)


def report_findings(session: ProcedureSession) -> QuerySet[Finding]:
    """The findings that a signed report contains."""
    return session.findings.filter(review_status__in=REPORT_STATUSES)


def _provenance(session: ProcedureSession) -> list[dict]:
    rows = set()
    for model in (Finding, Frame):
        rows |= set(
            model.objects.filter(session=session).exclude(backend="")
            .order_by().values_list(*PROVENANCE_KEYS).distinct()
        )
    return [dict(zip(PROVENANCE_KEYS, row)) for row in sorted(rows, key=lambda r: tuple(str(v) for v in r))]


def _transcript(conversation, utterances) -> ConversationTranscript:
    return ConversationTranscript(id=str(conversation.pk), user=conversation.user.get_username(),
                                  model=conversation.model, started_at=conversation.started_at,
                                  ended_at=conversation.ended_at, utterances=utterances)


def _conversations(session: ProcedureSession) -> tuple[list[ConversationTranscript], list[ConversationTranscript]]:
    """(conversations as of the signature, what was said after it). A conversation that
    went on past the signature is split at it; unsigned: everything is in the first."""
    from voice.models import Conversation

    signed_at = session.signed_at if session.is_signed else None
    before, after = [], []
    for conversation in (
        Conversation.objects.filter(session=session).select_related("user").prefetch_related("utterances")
        .order_by("started_at")
    ):
        utterances = sorted(conversation.utterances.all(), key=lambda u: u.created_at)
        said_before = [u for u in utterances if signed_at is None or u.created_at <= signed_at]
        said_after = [u for u in utterances if signed_at is not None and u.created_at > signed_at]
        started_before = signed_at is None or conversation.started_at <= signed_at
        if said_before or (started_before and not said_after):
            before.append(_transcript(conversation, said_before))
        if said_after:
            after.append(_transcript(conversation, said_after))
    return before, after


def _addenda(session: ProcedureSession) -> list:
    from procedures.models import Addendum

    return list(Addendum.objects.filter(session=session).select_related("author").order_by("created_at"))


def export_snapshot(*, session: ProcedureSession, actor) -> ExportSnapshot:
    session = ProcedureSession.objects.select_related("clinician", "signed_by").get(pk=session.pk)
    is_final = session.is_signed
    all_findings = Finding.objects.filter(session=session)
    shown = (report_findings(session) if is_final else all_findings).select_related("frame", "reviewed_by", "video")
    findings = list(shown.order_by("start_ms", "created_at"))
    counts = Counter(all_findings.values_list("review_status", flat=True))
    key_frames = {
        str(f.frame_id): f.frame for f in findings if f.frame_id and f.frame is not None and f.frame.image
    }
    conversations, later_conversations = _conversations(session)
    record = StructuredReport.objects.filter(session=session).first()
    marks = list(TimelineMark.objects.filter(session=session).select_related("video", "frame"))
    return ExportSnapshot(
        session=session,
        is_final=is_final,
        findings=findings,
        review_counts={status: counts.get(status, 0) for status in ReviewStatus.values},
        key_frames=key_frames,
        videos=list(session.videos.order_by("number")),
        conversations=conversations,
        conversations_after_signing=later_conversations,
        addenda=_addenda(session),
        provenance=_provenance(session),
        exported_at=timezone.now(),
        exported_by=actor.get_username() if getattr(actor, "is_authenticated", False) else "",
        structured_record=record,
        marks=marks,
    )


def export_list(*, session: ProcedureSession) -> QuerySet[Export]:
    return Export.objects.filter(session=session).select_related("created_by").order_by("-created_at")
