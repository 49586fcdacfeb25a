"""Reads of procedure sessions. Access filtering comes from ``procedures.access``."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from medvision.audit import log_access

from . import access
from .models import ProcedureSession


def session_list(*, user, status: str | None = None) -> QuerySet[ProcedureSession]:
    qs = access.visible_sessions(user).annotate(
        finding_count=Count("findings", distinct=True),
        high_risk_count=Count("findings", filter=Q(findings__risk="high"), distinct=True),
    ).order_by("-created_at")
    if status:
        qs = qs.filter(status=status)
    return qs


def procedure_date(session: ProcedureSession, videos) -> tuple:
    """``(when, source)`` of the procedure: the session's start (``"started_at"``); for a
    recorded session that never started live, the first recording's upload
    (``"recording_uploaded_at"``: the recording is of the procedure, its file date is not
    trusted); else ``(None, "none")``. The session page and every export use this one rule;
    each says the source in its own words."""
    if session.started_at is not None:
        return session.started_at, "started_at"
    if videos:
        return min(v.created_at for v in videos), "recording_uploaded_at"
    return None, "none"


def session_get(*, user, session_id, audit_as: str | None = "session") -> ProcedureSession:
    """The session if ``user`` may see it, else ``SessionNotFound``. Opening one is audited."""
    session = access.get_visible_session(user, session_id)
    if audit_as:
        log_access(actor=user, instance=session, what=audit_as)
    return session
