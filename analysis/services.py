"""Writes to frames and findings: recording analyzer results and the clinician's review.

Tasks, consumers and views call these; these call the engine's types and the broadcast
helper. Every write runs in a transaction and is attributed to its actor for the audit log.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from medvision.audit import acting_as
from procedures import access
from procedures.models import ProcedureSession

from .broadcast import broadcast
from .models import Finding, FindingOrigin, ReviewStatus
from .serializers import finding_event

REVIEW_ACTIONS = {"confirm": ReviewStatus.CONFIRMED, "reject": ReviewStatus.REJECTED}
CORRECTABLE_FIELDS = ("category", "label", "location", "risk", "size_mm", "description", "suggested_next_step")


def _locked_finding(finding_id, session_id) -> tuple[Finding, ProcedureSession]:
    # Lock the session row first: sign-off takes the same lock, so a review cannot slip in
    # after the report was signed.
    session = ProcedureSession.objects.select_for_update().get(pk=session_id)
    finding = Finding.objects.select_for_update().get(pk=finding_id, session=session)
    return finding, session


def finding_review(
    *, actor, finding: Finding, status: str | None = None, note: str | None = None, corrections: dict | None = None
) -> Finding:
    """Confirm, reject or correct a finding, and/or set the clinician's note.

    Corrections mark the finding "edited" (it enters the report with the clinician's
    values); the model's original proposal stays in ``ai_original``.
    """
    corrections = {k: v for k, v in (corrections or {}).items() if k in CORRECTABLE_FIELDS}
    with transaction.atomic(), acting_as(actor):
        finding, session = _locked_finding(finding.pk, finding.session_id)
        access.ensure_editable(actor, session)
        fields = {"updated_at"}
        if corrections:
            if finding.ai_original is None and finding.origin == FindingOrigin.AI:
                finding.ai_original = {f: getattr(finding, f) for f in CORRECTABLE_FIELDS}
            for name, value in corrections.items():
                setattr(finding, name, value)
            fields |= set(corrections) | {"ai_original"}
            status = status or ReviewStatus.EDITED
        if status:
            if status not in ReviewStatus.values or status == ReviewStatus.PROPOSED:
                raise ValueError("Review status must be confirmed, rejected or edited.")
            finding.review_status = status
            finding.reviewed_by = actor
            finding.reviewed_at = timezone.now()
            fields |= {"review_status", "reviewed_by", "reviewed_at"}
        if note is not None:
            finding.clinician_note = note
            fields.add("clinician_note")
        finding.full_clean()
        finding.save(update_fields=sorted(fields))
    broadcast(session.pk, {"type": "finding", "finding": finding_event(finding)})
    return finding


def finding_add_manual(*, actor, session: ProcedureSession, **values) -> Finding:
    """A finding the model missed, added by the clinician (it is confirmed by its author)."""
    with transaction.atomic(), acting_as(actor):
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        access.ensure_editable(actor, session)
        now = timezone.now()
        finding = Finding(
            session=session,
            origin=FindingOrigin.CLINICIAN,
            review_status=ReviewStatus.CONFIRMED,
            reviewed_by=actor,
            reviewed_at=now,
            end_ms=values.pop("end_ms", None) or values.get("start_ms", 0),
            **values,
        )
        finding.full_clean()
        finding.save()
    broadcast(session.pk, {"type": "finding", "finding": finding_event(finding)})
    return finding
