"""Reads of frames and findings. Callers pass a session they already resolved through
``procedures.access`` (or a session id plus the user), so access is never skipped."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AnalysisState, Finding, Frame, FrameSource, ResumableUpload, ReviewStatus, UploadState

REPORT_STATUSES = (ReviewStatus.CONFIRMED, ReviewStatus.EDITED)


def finding_list(*, session, risk: str | None = None, review_status: str | None = None,
                 category: str | None = None) -> QuerySet[Finding]:
    qs = Finding.objects.filter(session=session).select_related("frame", "reviewed_by", "video")
    if risk:
        qs = qs.filter(risk=risk)
    if review_status:
        qs = qs.filter(review_status=review_status)
    if category:
        qs = qs.filter(category=category)
    return qs.order_by("start_ms", "created_at")


def frame_list(*, session) -> QuerySet[Frame]:
    return Frame.objects.filter(session=session).order_by("timestamp_ms")


def live_frames_in_flight(*, session) -> QuerySet[Frame]:
    """Live frames still waiting for, or on, the model: proposals may yet come from them."""
    return Frame.objects.filter(session=session, source=FrameSource.LIVE,
                                analysis_state__in=(AnalysisState.PENDING, AnalysisState.ANALYSING))


def finding_list_for(*, user, session, **filters) -> QuerySet[Finding]:
    """The findings of a session ``user`` already may see, as that user may see them."""
    from procedures import access

    qs = finding_list(session=session, **filters)
    if access.sees_report_only(user, session):
        qs = qs.filter(review_status__in=REPORT_STATUSES)
    return qs


def finding_get_for(*, user, finding_id) -> Finding:
    """A finding of a session ``user`` may see, else ``SessionNotFound`` (a 404)."""
    from procedures import access

    try:
        finding = (Finding.objects.filter(pk=finding_id, session__in=access.visible_sessions(user))
                   .select_related("session", "reviewed_by").first())
    except (ValueError, TypeError):
        finding = None
    if finding is None or (access.sees_report_only(user, finding.session) and not finding.in_signed_report):
        raise access.SessionNotFound("No such finding.")
    return finding


def uploads_not_yet_recordings(*, user, session, refused_within=timedelta(days=1)) -> list[ResumableUpload]:
    """``user``'s resumable uploads to ``session`` that did not become a recording: complete
    and being checked, or refused within ``refused_within`` (the page says why)."""
    recent = timezone.now() - refused_within
    return list(ResumableUpload.objects.filter(session=session, created_by=user).filter(
        Q(state=UploadState.CHECKING) | Q(state=UploadState.REFUSED, updated_at__gte=recent)).order_by("-created_at")[:5])
