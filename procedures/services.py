"""Writes to procedure sessions. Each runs in a transaction and is attributed to its actor."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from medvision.audit import acting_as

from . import access
from .models import ProcedureSession, SessionMode, SessionStatus

EDITABLE_FIELDS = {"title", "procedure_type", "patient_ref", "encounter_ref", "notes"}


class NotAllowed(Exception):
    """A rule of the workflow refuses this change; the message says why."""


def session_create(
    *,
    actor,
    title: str,
    procedure_type: str,
    mode: str = SessionMode.LIVE,
    patient_ref: str = "",
    encounter_ref: str = "",
    notes: str = "",
) -> ProcedureSession:
    if not access.can_create_sessions(actor):
        raise access.SessionReadOnly("Only clinicians can create procedure sessions.")
    session = ProcedureSession(
        title=title,
        procedure_type=procedure_type,
        mode=mode,
        clinician=actor,
        patient_ref=patient_ref,
        encounter_ref=encounter_ref,
        notes=notes,
    )
    session.full_clean()
    with transaction.atomic(), acting_as(actor):
        session.save()
    return session


def session_update(*, actor, session: ProcedureSession, **changes) -> ProcedureSession:
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise NotAllowed(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    with transaction.atomic(), acting_as(actor):
        # Re-read under a row lock: a concurrent sign-off must win over a late edit.
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        access.ensure_editable(actor, session)
        for field, value in changes.items():
            setattr(session, field, value)
        session.full_clean()
        session.save(update_fields=[*changes, "updated_at"])
    return session


def session_set_status(*, session_id, status: str, actor=None, **timestamps) -> ProcedureSession:
    """Move a session through its workflow (used by tasks: processing, review, failed)."""
    if status == SessionStatus.SIGNED:
        raise NotAllowed("Use session_sign to sign a session.")
    with transaction.atomic():
        session = ProcedureSession.objects.select_for_update().get(pk=session_id)
        if session.status == SessionStatus.SIGNED:
            raise NotAllowed("This session is signed and can no longer be changed.")
        session.status = status
        fields = ["status", "updated_at"]
        for name, value in timestamps.items():
            setattr(session, name, value)
            fields.append(name)
        if actor is not None:
            with acting_as(actor):
                session.save(update_fields=fields)
        else:
            session.save(update_fields=fields)
    return session


def session_start_live(*, actor, session: ProcedureSession) -> ProcedureSession:
    with transaction.atomic(), acting_as(actor):
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        access.ensure_editable(actor, session)
        if session.status in (SessionStatus.DRAFT, SessionStatus.REVIEW):
            session.status = SessionStatus.LIVE
            session.started_at = session.started_at or timezone.now()
            session.save(update_fields=["status", "started_at", "updated_at"])
    return session


def session_sign(*, actor, session: ProcedureSession) -> ProcedureSession:
    """Sign the report: the session becomes read-only for everybody.

    Every AI proposal must have been decided first (confirmed, edited or rejected), so that
    nothing enters or leaves the signed report without a clinician's explicit decision.
    """
    from analysis.live import live_frames_cancel
    from analysis.models import ReviewStatus

    with transaction.atomic(), acting_as(actor):
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        access.ensure_editable(actor, session)
        if session.status == SessionStatus.PROCESSING:
            raise NotAllowed("The recording is still being analysed; sign once processing has finished.")
        # Live frames still waiting for (or on) the GPU are cancelled *before* counting
        # undecided proposals: the update waits for any result being recorded right now, so
        # a proposal it creates is counted, and no result can add one after the signature.
        # (If this sign-off is then refused, the transaction rolls back and those frames go
        # on being analysed as before.)
        live_frames_cancel(session=session)
        undecided = session.findings.filter(review_status=ReviewStatus.PROPOSED).count()
        if undecided:
            raise NotAllowed(
                f"{undecided} proposed finding(s) still need a decision (confirm, edit or reject) before signing."
            )
        now = timezone.now()
        session.status = SessionStatus.SIGNED
        session.signed_by = actor
        session.signed_at = now
        session.ended_at = session.ended_at or now
        if session.started_at and session.ended_at < session.started_at:
            session.ended_at = session.started_at
        session.save(update_fields=["status", "signed_by", "signed_at", "ended_at", "updated_at"])
    return session


def addendum_create(*, actor, session: ProcedureSession, text: str, finding=None):
    """Add a correction after sign-off: only on a signed session, only by its clinician."""
    from .models import Addendum

    with transaction.atomic(), acting_as(actor):
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        if not (session.clinician_id == actor.pk):
            raise access.SessionReadOnly("Only the clinician who signed this session can add an addendum.")
        if session.status != SessionStatus.SIGNED:
            raise NotAllowed("Addenda are for signed reports; before signing, edit the findings or notes directly.")
        addendum = Addendum(session=session, author=actor, text=text, finding=finding)
        addendum.full_clean()
        addendum.save()
    return addendum
