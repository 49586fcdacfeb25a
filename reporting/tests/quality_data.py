"""Signed sessions with structured reports and withdrawal marks, built with the ORM, for the
quality metrics tests (selector, views, browser)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from procedures.tests.factories import ProcedureSessionFactory
from reporting.models import StructuredReport, TimelineMark


def at(day: str, hour: int = 10) -> dt.datetime:
    """``"2025-03-14"`` -> an aware datetime that day in the current time zone."""
    return timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour)))


def colonoscopy_data(*, extent="cecum", bbps=(2, 2, 2), polyps=()) -> dict:
    right, transverse, left = bbps
    return {"extent": extent, "bbps_right": right, "bbps_transverse": transverse, "bbps_left": left,
            "polyps": [dict(p) for p in polyps]}


def polyp(histology="tubular_adenoma", **extra) -> dict:
    return {"histology": histology, "size_mm": 5, "location": "ascending_colon", **extra}


def signed_session(clinician, *, day: str | None = "2025-03-14", procedure_type="colonoscopy", data=None,
                   withdrawal_s: float | None = None, status="signed", signed_day: str | None = None):
    """A session of ``clinician``: signed (unless ``status`` says otherwise) on ``signed_day``
    (default: the procedure day), started on ``day`` (None: never started), its structured
    report holding ``data`` (None: no report row at all) and, with ``withdrawal_s``, marks
    "cecum reached" at 2:00 and "scope out" that many seconds later on the live clock."""
    started = at(day) if day else None
    signed_at = at(signed_day or day, 16) if status == "signed" else None
    session = ProcedureSessionFactory(
        clinician=clinician, procedure_type=procedure_type, status=status, started_at=started,
        signed_by=clinician if status == "signed" else None, signed_at=signed_at,
    )
    if data is not None:
        StructuredReport.objects.create(session=session, data=data, updated_by=clinician)
    if withdrawal_s is not None:
        TimelineMark.objects.create(session=session, kind="cecum_reached", time_ms=120_000, set_by=clinician)
        TimelineMark.objects.create(session=session, kind="scope_out", time_ms=120_000 + int(withdrawal_s * 1000),
                                    set_by=clinician)
    return session
