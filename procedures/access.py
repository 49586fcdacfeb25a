"""Who may see and change a procedure session: the one place these rules live.

Every page, API view and WebSocket consumer resolves a session through these functions.
- A clinician sees and changes only their own sessions; anybody else's is "not found"
  (404, so that ids cannot be probed).
- A QA reviewer (and an administrator) reads every session and changes none.
- An EHR connector reads signed sessions only.
- A signed session is read-only for everybody.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from medvision import roles

from .models import ProcedureSession, SessionStatus


class SessionNotFound(Http404):
    pass


class SessionReadOnly(PermissionDenied):
    pass


def visible_sessions(user) -> QuerySet[ProcedureSession]:
    qs = ProcedureSession.objects.select_related("clinician", "signed_by")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return qs.none()
    if roles.is_administrator(user) or roles.is_qa_reviewer(user):
        return qs
    if roles.is_clinician(user):
        if roles.is_ehr_connector(user):
            return qs.filter(clinician=user) | qs.filter(status=SessionStatus.SIGNED)
        return qs.filter(clinician=user)
    if roles.is_ehr_connector(user):
        return qs.filter(status=SessionStatus.SIGNED)
    return qs.none()


def get_visible_session(user, session_id) -> ProcedureSession:
    try:
        return visible_sessions(user).get(pk=session_id)
    except (ProcedureSession.DoesNotExist, ValueError, TypeError):
        # ValueError/TypeError: a malformed id is as unknown as a missing one.
        raise SessionNotFound("No such procedure session.") from None


def is_owner(user, session: ProcedureSession) -> bool:
    """The clinician the session belongs to (the only one who may change it or talk to
    the voice copilot about it)."""
    return roles.is_clinician(user) and session.clinician_id == user.pk


def sees_report_only(user, session: ProcedureSession) -> bool:
    """True when ``user`` reaches ``session`` only as an EHR connector: they see the signed
    report (confirmed and edited findings), not the proposals that were rejected."""
    if roles.is_administrator(user) or roles.is_qa_reviewer(user):
        return False
    return not is_owner(user, session)


def can_create_sessions(user) -> bool:
    return roles.is_clinician(user)


def can_edit(user, session: ProcedureSession) -> bool:
    return is_owner(user, session) and session.status != SessionStatus.SIGNED


def edit_refusal(user, session: ProcedureSession) -> str | None:
    """Why ``user`` may not change ``session`` (None when they may)."""
    if session.status == SessionStatus.SIGNED:
        return "This session is signed and can no longer be changed; corrections are added as addenda."
    if not is_owner(user, session):
        return "Only the clinician who owns this session can change it."
    return None


def ensure_editable(user, session: ProcedureSession) -> None:
    reason = edit_refusal(user, session)
    if reason:
        raise SessionReadOnly(reason)
