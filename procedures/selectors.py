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


def session_get(*, user, session_id, audit_as: str | None = "session") -> ProcedureSession:
    """The session if ``user`` may see it, else ``SessionNotFound``. Opening one is audited."""
    session = access.get_visible_session(user, session_id)
    if audit_as:
        log_access(actor=user, instance=session, what=audit_as)
    return session
