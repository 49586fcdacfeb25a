"""Reads of the structured report and the timeline marks.

Callers resolve the session through ``procedures.access.get_visible_session`` first (the one
access rule) and log the read (``medvision.audit.log_access``); these functions take that
session and add no access rule of their own.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from . import schema, vocabulary
from .labels import SURVEILLANCE_LABEL, WITHDRAWAL_LABEL, display, row_tables, scalar_fields
from .models import StructuredReport, TimelineMark
from .withdrawal import Withdrawal, format_duration, withdrawal_from_marks


def report_for_session(session) -> StructuredReport | None:
    """The stored report, or None when nobody has started one."""
    return StructuredReport.objects.select_related("updated_by").filter(session=session).first()


def marks_for_session(session) -> QuerySet[TimelineMark]:
    """The session's marks in time order, with their recording, key frame and author."""
    return (TimelineMark.objects.filter(session=session)
            .select_related("video", "frame", "set_by").order_by("time_ms", "kind"))


def _mark_item(mark: TimelineMark) -> dict[str, Any]:
    return {
        "id": str(mark.pk),
        "kind": mark.kind,
        "label": vocabulary.label(vocabulary.MARK_KINDS, mark.kind),
        "time_ms": mark.time_ms,
        "time_display": format_duration(mark.time_ms / 1000),
        "video_id": str(mark.video_id) if mark.video_id else None,
        "video_label": mark.video.display_name if mark.video_id else "Live stream",
        "frame_id": str(mark.frame_id) if mark.frame_id else None,
        "frame": mark.frame,
        "set_by": mark.set_by.get_username() if mark.set_by_id else "",
        "updated_at": mark.updated_at,
    }


def report_view(session, *, report: StructuredReport | None = None, marks=None) -> dict[str, Any]:
    """Everything a page or an export shows of the structured report, computed once.

    Stable contract (pages, PDF, report.txt, FHIR and the API read these keys)::

        procedure_type   str   the session's type ("colonoscopy", ...)
        report           the typed pydantic model (reporting.schema), valid, maybe incomplete
        data             dict  its JSON form (what StructuredReport.data holds)
        stored           bool  whether a report was saved (False: an empty one is shown)
        updated_by       str   username of the last editor ("" if none)
        updated_at       datetime | None
        fields           [{"name", "label", "value", "display"}]  single-value fields in order;
                         "display" is the text to show ("" when empty; labels, never codes)
        tables           [{"name", "label", "row_label", "columns": [{"name", "label"}],
                           "rows": [{"id", "finding_id", "number", "values": {col: value},
                                     "cells": [display text per column]}]}]
        bbps_total       int | None     (colonoscopy; None otherwise or when a segment is empty)
        bbps_adequate    bool | None    every segment >= 2
        withdrawal       reporting.withdrawal.Withdrawal | None (colonoscopy only)
        withdrawal_s     float | None
        withdrawal_display  "m:ss" or ""
        withdrawal_problem  what to fix when there is no time ("" otherwise)
        withdrawal_meets_target  bool | None (>= 6 min)
        suggestion       reporting.surveillance.Suggestion | None (colonoscopy only)
        surveillance     {"suggested_months", "suggested_rule", "chosen_months", "chosen_display",
                          "confirmed", "note", "stale"} | None  (stale: the findings changed
                          since the confirmation)
        marks            [{"id", "kind", "label", "time_ms", "time_display", "video_id",
                           "video_label", "frame_id", "frame" (analysis.Frame | None), "set_by",
                           "updated_at"}] in time order
        missing          [str]  labels still to fill in before signing ([] = may be signed)
        labels           {"withdrawal": ..., "surveillance": ...}  headings for those blocks

    ``report`` / ``marks`` may be passed when the caller has them (one query less each).
    """
    from .validation import missing_for_sign

    procedure = session.procedure_type
    stored = report if report is not None else report_for_session(session)
    marks = list(marks if marks is not None else marks_for_session(session))
    typed = schema.parse(procedure, stored.data if stored is not None else {})
    data = typed.model_dump(mode="json")

    fields = [{"name": name, "label": label, "value": data.get(name),
               "display": display(procedure, name, data.get(name))} for name, label in scalar_fields(procedure)]
    tables = []
    for name, (table_label, row_label, columns) in row_tables(procedure).items():
        rows = []
        for number, row in enumerate(data.get(name) or [], start=1):
            rows.append({
                "id": row.get("id", ""),
                "finding_id": row.get("finding_id"),
                "number": number,
                "values": {column: row.get(column) for column, _ in columns},
                "cells": [display(procedure, column, row.get(column)) for column, _ in columns],
            })
        tables.append({"name": name, "label": table_label, "row_label": row_label,
                       "columns": [{"name": column, "label": label} for column, label in columns], "rows": rows})

    view: dict[str, Any] = {
        "procedure_type": procedure,
        "report": typed,
        "data": data,
        "stored": stored is not None and stored.pk is not None and not stored._state.adding,
        "updated_by": stored.updated_by.get_username() if stored is not None and stored.updated_by_id else "",
        "updated_at": stored.updated_at if stored is not None else None,
        "fields": fields,
        "tables": tables,
        "bbps_total": None,
        "bbps_adequate": None,
        "withdrawal": None,
        "withdrawal_s": None,
        "withdrawal_display": "",
        "withdrawal_problem": "",
        "withdrawal_meets_target": None,
        "suggestion": None,
        "surveillance": None,
        "marks": [_mark_item(mark) for mark in marks],
        "missing": missing_for_sign(session, typed, marks),
        "labels": {"withdrawal": WITHDRAWAL_LABEL, "surveillance": SURVEILLANCE_LABEL},
    }
    if procedure == "colonoscopy":
        view.update(_colonoscopy(typed, marks))
    return view


def _colonoscopy(typed, marks) -> dict[str, Any]:
    from .surveillance import interval_display, suggest_interval

    withdrawal: Withdrawal = withdrawal_from_marks(marks)
    suggestion = suggest_interval(typed)
    block = typed.surveillance
    stale = block.confirmed and suggestion.months != block.suggested_months  # as reporting.validation
    return {
        "bbps_total": typed.bbps_total,
        "bbps_adequate": typed.bbps_adequate,
        "withdrawal": withdrawal,
        "withdrawal_s": withdrawal.seconds,
        "withdrawal_display": format_duration(withdrawal.seconds),
        "withdrawal_problem": withdrawal.problem,
        "withdrawal_meets_target": withdrawal.meets_target,
        "suggestion": suggestion,
        "surveillance": {
            "suggested_months": block.suggested_months,
            "suggested_rule": block.suggested_rule,
            "chosen_months": block.chosen_months,
            "chosen_display": interval_display(block.chosen_months) if block.chosen_months is not None else "",
            "confirmed": block.confirmed,
            "note": block.note,
            "stale": bool(stale),
        },
    }


# --- pathology after sign-off ----------------------------------------------------------------


def pathology_for_session(session) -> QuerySet:
    """Every pathology result entered for the session, oldest first, with who entered it
    (append-only: a correction is a later row; ``pathology.latest_by_polyp`` picks the one
    that counts)."""
    from .models import PathologyResult

    return PathologyResult.objects.filter(session=session).select_related("entered_by").order_by("created_at")


def report_with_pathology(session, *, report: StructuredReport | None = None, results=None) -> schema.ColonoscopyReport:
    """The session's colonoscopy report with each polyp's histology replaced by its latest
    pathology result (the signed report itself is unchanged). ``report`` (the stored
    StructuredReport) and ``results`` may be passed when the caller has them."""
    from .pathology import apply_pathology

    stored = report if report is not None else report_for_session(session)
    typed = schema.parse("colonoscopy", stored.data if stored is not None else {})
    results = list(results if results is not None else pathology_for_session(session))
    return apply_pathology(typed, results)


def pathology_view(session, *, report: StructuredReport | None = None, results=None) -> dict[str, Any]:
    """What the report page and the API show of the pathology results::

        results     [{"id", "polyp_id", "polyp" (title with number, location, size), "histology",
                      "histology_label", "note", "entered_by", "created_at", "current" (the
                      latest for its polyp)}] oldest first
        polyps      [{"id", "title", "histology" (latest or the report's), "histology_label",
                      "from_pathology"}] the signed report's polyp rows
        suggestion  reporting.surveillance.Suggestion with the pathology applied
        complete    every polyp has a histology (from the report or a result)
    """
    from .pathology import all_have_histology, apply_pathology, latest_by_polyp, polyp_title
    from .surveillance import suggest_interval

    stored = report if report is not None else report_for_session(session)
    signed = schema.parse("colonoscopy", stored.data if stored is not None else {})
    results = list(results if results is not None else pathology_for_session(session))
    latest = latest_by_polyp(results)
    current = {result.pk for result in latest.values()}
    with_pathology = apply_pathology(signed, results)
    return {
        "results": [{
            "id": str(result.pk), "polyp_id": result.polyp_id, "polyp": polyp_title(signed, result.polyp_id),
            "histology": result.histology,
            "histology_label": vocabulary.label(vocabulary.POLYP_HISTOLOGY, result.histology),
            "note": result.note, "entered_by": result.entered_by.get_username(), "created_at": result.created_at,
            "current": result.pk in current,
        } for result in results],
        "polyps": [{
            "id": polyp.id, "title": polyp_title(signed, polyp.id), "histology": polyp.histology,
            "histology_label": vocabulary.label(vocabulary.POLYP_HISTOLOGY, polyp.histology),
            "from_pathology": polyp.id in latest,
        } for polyp in with_pathology.polyps],
        "suggestion": suggest_interval(with_pathology),
        "complete": all_have_histology(with_pathology),
    }
