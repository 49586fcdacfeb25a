"""The sessions QA metrics are computed from: signed ones only, by procedure date.

Access is not decided here: the quality views admit staff only (the page compares
clinicians), and staff read everything.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from medvision.roles import CLINICIAN
from procedures.models import ProcedureSession, SessionStatus

from . import vocabulary as v
from .models import PathologyResult, TimelineMark


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def quality_session_list(*, date_from: dt.date, date_to: dt.date, clinician=None) -> QuerySet[ProcedureSession]:
    """Signed sessions (every procedure type: the others are counted) whose procedure date
    (start, else signature) falls in ``date_from``..``date_to`` inclusive, local days; with
    clinician, structured report, the withdrawal marks and the pathology results loaded:
    one query plus one for the marks and one for the pathology results."""
    marks = TimelineMark.objects.filter(kind__in=(v.WITHDRAWAL_START_MARK, v.WITHDRAWAL_END_MARK)).only(
        "id", "session_id", "kind", "time_ms", "video_id")
    # Histology entered after sign-off: the latest per polyp stands in for "pending" (ADR).
    pathology = PathologyResult.objects.only("id", "session_id", "polyp_id", "histology", "created_at")
    sessions = (
        ProcedureSession.objects.filter(status=SessionStatus.SIGNED)
        .annotate(performed_at=Coalesce("started_at", "signed_at"))
        .filter(performed_at__gte=_local_midnight(date_from),
                performed_at__lt=_local_midnight(date_to + dt.timedelta(days=1)))
        .select_related("clinician", "structured_report")
        # The notes (up to 20,000 characters each) are never needed here.
        .defer("notes")
        .prefetch_related(Prefetch("marks", queryset=marks),
                          Prefetch("pathology_results", queryset=pathology))
        .order_by("performed_at", "id")
    )
    if clinician is not None:
        sessions = sessions.filter(clinician=clinician)
    return sessions


def quality_clinician_choices() -> QuerySet:
    """Whom the clinician filter offers: members of the clinician group and anyone who owns
    a signed session (a former clinician's procedures still count)."""
    return (
        get_user_model().objects.filter(
            Q(groups__name=CLINICIAN) | Q(procedure_sessions__status=SessionStatus.SIGNED))
        .distinct().order_by("username")
    )
