"""Reads of frames and findings. Callers pass a session they already resolved through
``procedures.access`` (or a session id plus the user), so access is never skipped."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Finding, Frame


def finding_list(*, session, risk: str | None = None, review_status: str | None = None,
                 category: str | None = None) -> QuerySet[Finding]:
    qs = Finding.objects.filter(session=session).select_related("frame", "reviewed_by")
    if risk:
        qs = qs.filter(risk=risk)
    if review_status:
        qs = qs.filter(review_status=review_status)
    if category:
        qs = qs.filter(category=category)
    return qs.order_by("start_ms", "created_at")


def frame_list(*, session) -> QuerySet[Frame]:
    return Frame.objects.filter(session=session).order_by("timestamp_ms")
