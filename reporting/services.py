"""Writes to the structured report and the timeline marks.

Every write: the session row locked, ``procedures.access.ensure_editable`` (only the owner,
never once signed: ``SessionReadOnly``), attributed with ``acting_as``, in one transaction.
Refused values raise ``schema.ReportDataError`` (one message per field, for a 400 or a
form); a rule of the procedure (marks on a bronchoscopy) raises ``workflow.NotAllowed``.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.db import transaction

from analysis.models import ReviewStatus
from medvision.audit import acting_as
from procedures import access
from procedures.models import ProcedureSession

from . import schema, vocabulary
from .models import StructuredReport, TimelineMark

# The kinds whose moment is documented with a picture (the cecal landmarks; "cecum reached"
# shows where the withdrawal starts). "Scope out" is only a time.
KEY_FRAME_KINDS = ("cecum_reached", "appendiceal_orifice", "ileocecal_valve")
MARK_PROCEDURES = ("colonoscopy",)
# What the clinician may set on the surveillance block; the suggestion is the server's.
SURVEILLANCE_CHOICE_FIELDS = ("chosen_months", "note", "confirmed")


def _locked(session: ProcedureSession, actor) -> ProcedureSession:
    locked = ProcedureSession.objects.select_for_update().get(pk=session.pk)
    access.ensure_editable(actor, locked)
    return locked


def _new_row_id() -> str:
    return uuid.uuid4().hex[:12]


def report_get_or_create(*, session: ProcedureSession) -> StructuredReport:
    """The session's report; an empty one is created for an unsigned session. A signed
    session that never had one gets an unsaved empty report: nothing is written to it."""
    report = StructuredReport.objects.filter(session=session).first()
    if report is not None:
        return report
    if session.is_signed:
        return StructuredReport(session=session, data=schema.empty(session.procedure_type))
    report, _ = StructuredReport.objects.get_or_create(session=session,
                                                       defaults={"data": schema.empty(session.procedure_type)})
    return report


def _locked_report(session: ProcedureSession) -> StructuredReport:
    report_get_or_create(session=session)
    return StructuredReport.objects.select_for_update().get(session=session)


def _with_ids(data: dict[str, Any], procedure_type: str) -> dict[str, Any]:
    """Rows without an id get one, so pages and the API can address a row across edits."""
    from .labels import row_tables

    for table in row_tables(procedure_type):
        for row in data.get(table) or []:
            if isinstance(row, dict) and not row.get("id"):
                row["id"] = _new_row_id()
    return data


def report_update(*, actor, session: ProcedureSession, data: dict[str, Any]) -> StructuredReport:
    """Store the fields in ``data`` (keys left out keep their stored value; send a field
    empty to clear it). The result is validated whole (``ReportDataError``).

    The surveillance block: the clinician's choice (chosen interval, note, confirmed) is
    taken from ``data``; the suggestion it was made against is recomputed here, never
    taken from the client. Sending back the stored block unchanged changes nothing."""
    if not isinstance(data, dict):
        raise schema.ReportDataError({"report": "Send the report as a JSON object."})
    with transaction.atomic(), acting_as(actor):
        session = _locked(session, actor)
        report = _locked_report(session)
        stored = dict(report.data or {})
        merged = {**stored, **data}
        if "surveillance" in data:
            merged["surveillance"] = _surveillance_from_client(session, stored, merged, data["surveillance"])
        typed = schema.parse(session.procedure_type, _with_ids(merged, session.procedure_type))
        report.data = typed.model_dump(mode="json")
        report.updated_by = actor
        report.save()
    return report


def _surveillance_from_client(session, stored: dict, merged: dict, submitted) -> dict:
    if not isinstance(submitted, dict):
        raise schema.ReportDataError({"surveillance": "Send the surveillance choice as an object."})
    before = dict(stored.get("surveillance") or {})
    choice = {key: submitted[key] for key in SURVEILLANCE_CHOICE_FIELDS if key in submitted}
    if all(before.get(key) == value for key, value in choice.items()):
        return before  # round trip of what GET returned
    after = {**schema.Surveillance().model_dump(), **before, **choice}
    if after.get("confirmed"):
        if session.procedure_type != "colonoscopy":
            raise schema.ReportDataError({"surveillance": "A surveillance interval is part of a colonoscopy report."})
        if after.get("chosen_months") is None:
            raise schema.ReportDataError({"surveillance.chosen_months": "Choose the interval you confirm."})
        # Validate the rest of the report first: the suggestion is made from valid data only.
        draft = schema.parse(session.procedure_type, {**merged, "surveillance": before})
        after.update(_suggestion_snapshot(draft))
    return after


def _suggestion_snapshot(typed) -> dict:
    from .surveillance import suggest_interval

    suggestion = suggest_interval(typed)
    return {"suggested_months": suggestion.months, "suggested_rule": suggestion.rule[:200]}


def report_prefill(*, actor, session: ProcedureSession) -> int:
    """Add a report row for every finding the clinician confirmed (or corrected) that no
    row links to yet: colonoscopy polyp -> polyp row (size, location), upper GI ulcer ->
    ulcer row, bronchoscopy finding -> segment finding row. Proposed and rejected findings
    never enter. Rows keep their ``finding_id``; running it again adds nothing. Returns
    how many rows were added."""
    from analysis.engine.schemas import LOCATIONS

    with transaction.atomic(), acting_as(actor):
        session = _locked(session, actor)
        report = _locked_report(session)
        typed = schema.parse(session.procedure_type, report.data)
        data = typed.model_dump(mode="json")
        procedure = session.procedure_type
        rule = PREFILL_RULES.get(procedure)
        if rule is None:
            return 0
        table, categories, make_row = rule
        linked = {row.get("finding_id") for rows in _linkable_rows(data, procedure) for row in rows}
        findings = (session.findings.filter(review_status__in=[ReviewStatus.CONFIRMED, ReviewStatus.EDITED])
                    .order_by("start_ms", "created_at"))
        if categories is not None:
            findings = findings.filter(category__in=categories)
        locations = LOCATIONS.get(procedure, ())
        added = 0
        for finding in findings:
            if not finding.in_signed_report or str(finding.pk) in linked:
                continue
            location = finding.location if finding.location in locations else None
            data.setdefault(table, []).append({"id": _new_row_id(), "finding_id": str(finding.pk),
                                               **make_row(finding, location)})
            added += 1
        if added:
            typed = schema.parse(procedure, data)
            report.data = typed.model_dump(mode="json")
            report.updated_by = actor
            report.save()
    return added


def _size(finding) -> float | None:
    return None if finding.size_mm is None else float(finding.size_mm)


def _finding_text(finding) -> str:
    from analysis.engine.schemas import humanize

    text = finding.label or humanize(finding.category)
    return " ".join(text.split())[:200]


# procedure -> (report table, finding categories or None for all, row maker)
PREFILL_RULES = {
    "colonoscopy": ("polyps", ("polyp",), lambda f, loc: {"size_mm": _size(f), "location": loc}),
    "upper_gi": ("ulcers", ("ulcer",), lambda f, loc: {"size_mm": _size(f), "location": loc}),
    "bronchoscopy": ("segment_findings", None, lambda f, loc: {"segment": loc, "text": _finding_text(f)}),
}


def _linkable_rows(data: dict, procedure: str):
    from .labels import row_tables

    return [data.get(table) or [] for table in row_tables(procedure)]


def surveillance_confirm(*, actor, session: ProcedureSession, chosen_months: int | None,
                         note: str = "") -> StructuredReport:
    """The clinician confirms the suggested interval or chooses another (``chosen_months``;
    0 = no surveillance colonoscopy). The suggestion and its rule are stored as they stood
    at that moment, beside the choice."""
    from procedures.workflow import NotAllowed

    with transaction.atomic(), acting_as(actor):
        session = _locked(session, actor)
        if session.procedure_type != "colonoscopy":
            raise NotAllowed("A surveillance interval is part of a colonoscopy report.")
        if chosen_months is None:
            raise schema.ReportDataError({"surveillance.chosen_months": "Choose the interval you confirm."})
        report = _locked_report(session)
        typed = schema.parse(session.procedure_type, report.data)
        data = typed.model_dump(mode="json")
        data["surveillance"] = {**_suggestion_snapshot(typed), "chosen_months": chosen_months,
                                "note": note or "", "confirmed": True}
        typed = schema.parse(session.procedure_type, data)
        report.data = typed.model_dump(mode="json")
        report.updated_by = actor
        report.save()
    return report


# --- timeline marks ------------------------------------------------------------------------


def _check_mark_values(session: ProcedureSession, kind: str, time_ms, video) -> int:
    from procedures.workflow import NotAllowed

    if session.procedure_type not in MARK_PROCEDURES:
        raise NotAllowed("Timeline marks (cecum reached, scope out, cecal landmarks) are for colonoscopies.")
    if kind not in vocabulary.codes(vocabulary.MARK_KINDS):
        names = ", ".join(label for _, label in vocabulary.MARK_KINDS)
        raise schema.ReportDataError({"kind": f"Choose one of: {names}."})
    if isinstance(time_ms, bool) or not isinstance(time_ms, int | float) or not math.isfinite(time_ms):
        raise schema.ReportDataError({"time_ms": "Give the time in milliseconds."})
    if time_ms < 0:
        raise schema.ReportDataError({"time_ms": "The time cannot be before the start of the procedure."})
    if video is not None and video.session_id != session.pk:
        raise schema.ReportDataError({"video": "That recording belongs to another procedure."})
    time_ms = int(round(time_ms))
    if video is not None and video.duration_s is not None and time_ms > video.duration_s * 1000 + 50:
        from .withdrawal import format_duration

        raise schema.ReportDataError({"time_ms": f"{format_duration(time_ms / 1000)} is after the end of "
                                                 f"{video.display_name} ({format_duration(video.duration_s)} long)."})
    return time_ms


def mark_set(*, actor, session: ProcedureSession, kind: str, time_ms: int, video=None) -> TimelineMark:
    """Set the ``kind`` mark at ``time_ms`` of ``video`` (None: the live stream), or move
    it there when the session has one (one mark per kind). Landmarks and "cecum reached"
    get the key frame at that moment (``analysis.keyframes``)."""
    from analysis.keyframes import key_frame_at

    access.ensure_editable(actor, session)  # before any picture is taken
    time_ms = _check_mark_values(session, kind, time_ms, video)
    frame = None
    if kind in KEY_FRAME_KINDS:
        # Outside the transaction: extracting a still runs ffmpeg, which must not hold the
        # session row locked meanwhile. The frame is harmless if the mark is then refused.
        try:
            frame = key_frame_at(session=session, video=video, time_ms=time_ms)
        except ValueError as exc:  # past the end, or no picture there (KeyFrameError)
            raise schema.ReportDataError({"time_ms": str(exc)}) from None
    with transaction.atomic(), acting_as(actor):
        session = _locked(session, actor)
        mark = TimelineMark.objects.filter(session=session, kind=kind).first()
        if mark is None:
            mark = TimelineMark(session=session, kind=kind)
        mark.time_ms, mark.video, mark.frame, mark.set_by = time_ms, video, frame, actor
        mark.save()
    return mark


def mark_delete(*, actor, session: ProcedureSession, mark_id=None, kind: str | None = None) -> bool:
    """Remove a mark, named by id or by kind. Returns whether there was one."""
    with transaction.atomic(), acting_as(actor):
        session = _locked(session, actor)
        marks = TimelineMark.objects.filter(session=session)
        if mark_id is not None:
            marks = marks.filter(pk=mark_id)
        elif kind is not None:
            marks = marks.filter(kind=kind)
        else:
            raise ValueError("mark_delete needs mark_id or kind")
        mark = marks.first()
        if mark is None:
            return False
        mark.delete()
    return True


# --- pathology after sign-off ----------------------------------------------------------------


def pathology_record(*, actor, session: ProcedureSession, polyp_id: str, histology: str,
                     note: str = ""):
    """Enter a polyp's histology from the pathology report, after sign-off: a
    ``PathologyResult`` (the latest per polyp counts) and an addendum saying what it was and
    what the surveillance table suggests with it. The signed report is not changed.

    Only the owning clinician (``SessionReadOnly`` otherwise), only on a signed colonoscopy
    (``NotAllowed``), only for a polyp row of the signed report and a histology other than
    pending (``ReportDataError`` naming the field)."""
    from django.core.exceptions import ValidationError as DjangoValidationError

    from procedures.workflow import NotAllowed, addendum_create

    from . import pathology
    from .models import PathologyResult
    from .surveillance import interval_display, suggest_interval

    with transaction.atomic(), acting_as(actor):
        session = ProcedureSession.objects.select_for_update().get(pk=session.pk)
        if not access.is_owner(actor, session):
            raise access.SessionReadOnly("Only the clinician who owns this session can enter pathology results.")
        if not session.is_signed:
            raise NotAllowed("Before signing, set the histology in the report itself; pathology results are "
                             "entered here once the report is signed.")
        if session.procedure_type != "colonoscopy":
            raise NotAllowed("Pathology results are entered for the polyps of a colonoscopy report.")
        stored = StructuredReport.objects.filter(session=session).first()
        signed = schema.parse(session.procedure_type, stored.data if stored is not None else {})
        if not isinstance(polyp_id, str) or pathology.polyp_number(signed, polyp_id) is None:
            raise schema.ReportDataError({"polyp_id": "The signed report has no such polyp; choose one of its "
                                                      "polyp rows."})
        if not isinstance(histology, str) or histology not in vocabulary.codes(pathology.RESULT_HISTOLOGY):
            names = ", ".join(text for _, text in pathology.RESULT_HISTOLOGY)
            raise schema.ReportDataError({"histology": f"Choose the histology the pathology report gives: {names}."})
        note = note.strip() if isinstance(note, str) else ""
        result = PathologyResult(session=session, polyp_id=polyp_id, histology=histology, note=note,
                                 entered_by=actor)
        try:
            result.full_clean()
        except DjangoValidationError as exc:
            errors = exc.message_dict
            raise schema.ReportDataError({field: messages[0] for field, messages in errors.items()}) from None
        result.save()

        results = list(PathologyResult.objects.filter(session=session))
        with_pathology = pathology.apply_pathology(signed, results)
        suggestion = suggest_interval(with_pathology)
        chosen = signed.surveillance.chosen_months if signed.surveillance.confirmed else None
        text = (f"Pathology, {pathology.polyp_title(signed, polyp_id).replace('Polyp', 'polyp', 1)}: "
                f"{vocabulary.label(vocabulary.POLYP_HISTOLOGY, histology)}."
                + (f" Note: {note.rstrip('.')}." if note else "")
                + f" With the pathology entered so far the 2020 USMSTF table suggests: {suggestion.display} "
                  f"({suggestion.rule.replace(' (provisional until pathology)', '; provisional until pathology')})."
                + (f" The signed interval was: {interval_display(chosen)}." if chosen is not None
                   else " No surveillance interval was confirmed at signing."))
        addendum_create(actor=actor, session=session, text=text)
    return result
