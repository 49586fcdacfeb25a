"""Creating sessions and editing their details. Each write runs in a transaction and is
attributed to its actor. Status changes (live, processing, review, signed, ...) are the
workflow's (``procedures.workflow``)."""

from __future__ import annotations

from django.db import transaction

from medvision.audit import acting_as

from . import access
from .models import ProcedureSession, SessionMode
from .workflow import NotAllowed

EDITABLE_FIELDS = {"title", "procedure_type", "patient_ref", "encounter_ref", "notes"}


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
