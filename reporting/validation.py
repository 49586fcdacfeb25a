"""What a structured report needs before the session can be signed.

``missing_for_sign(session, report, marks)`` lists, by the labels people read
(``reporting.labels``), what is still to be filled in; empty means the report may be
signed. ``refuse_incomplete_report`` is the ``procedures.workflow.session_signing``
receiver (connected in ``ReportingConfig.ready``) that turns that list into the refusal.

Required for every procedure type: indication, ASA class, sedation, complications (an
explicit "None" counts) and the impression. Colonoscopy: the extent; where and why an
incomplete examination stopped; all three BBPS segments; when the cecum was reached, the
withdrawal time (both marks, valid) and both cecal landmarks marked with a key frame; size
and location of every polyp; the surveillance interval confirmed against the current
suggestion. Upper GI: the extent; Prague C and M when Barrett's is recorded; location and
Forrest class of every ulcer; the site of every biopsy. Bronchoscopy: at least one segment
examined; the segment of every finding; kind and site of every sample. Rows prefilled from
an AI finding are refused once that finding is no longer confirmed: nothing a clinician
has not confirmed enters a signed report.
"""

from __future__ import annotations

from typing import Iterable

from procedures.workflow import NotAllowed

from . import schema, vocabulary
from .labels import SURVEILLANCE_LABEL, WITHDRAWAL_LABEL, field_label, row_tables
from .models import StructuredReport, TimelineMark
from .withdrawal import withdrawal_from_marks

COMMON_REQUIRED = ("indication_kind", "asa_class", "sedation_level", "complications", "impression")
# table -> columns every row must have
ROW_REQUIRED = {
    "polyps": ("size_mm", "location"),
    "ulcers": ("location", "forrest"),
    "biopsies": ("site",),
    "segment_findings": ("segment",),
    "samples": ("kind", "site"),
}


def _typed(session, report):
    if report is None:
        return schema.parse(session.procedure_type, {})
    if isinstance(report, StructuredReport):
        return schema.parse(session.procedure_type, report.data)
    return report


def _empty(value) -> bool:
    return value is None or value == "" or value == []


def _problem(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]


def missing_for_sign(session, report, marks: Iterable) -> list[str]:
    """The labels of what must still be filled in ("ASA class", "Polyp 2 location", ...).
    ``report``: the StructuredReport, its typed data, or None (no report yet)."""
    procedure = session.procedure_type
    typed = _typed(session, report)
    marks = list(marks)
    missing = [field_label(procedure, name) for name in COMMON_REQUIRED if _empty(getattr(typed, name))]
    if procedure == "colonoscopy":
        missing += _colonoscopy(typed, marks)
    elif procedure == "upper_gi":
        missing += _upper_gi(typed)
    elif procedure == "bronchoscopy":
        if not typed.segments_examined:
            missing.append(field_label(procedure, "segments_examined"))
    missing += _rows(procedure, typed)
    missing += _unconfirmed_sources(session, procedure, typed)
    return missing


def _colonoscopy(typed, marks) -> list[str]:
    procedure = "colonoscopy"
    missing = []
    if typed.extent is None:
        missing.append(field_label(procedure, "extent"))
    elif typed.extent == "incomplete":
        missing += [field_label(procedure, name) for name in ("incomplete_location", "incomplete_reason")
                    if getattr(typed, name) is None]
    missing += [field_label(procedure, name) for name in ("bbps_right", "bbps_transverse", "bbps_left")
                if getattr(typed, name) is None]
    if typed.cecum_reached:
        withdrawal = withdrawal_from_marks(marks)
        if withdrawal.seconds is None:
            missing.append(f"{WITHDRAWAL_LABEL} ({_problem(withdrawal.problem)})")
        by_kind = {mark.kind: mark for mark in marks}
        for kind, label in vocabulary.CECAL_LANDMARKS:
            mark = by_kind.get(kind)
            if mark is None:
                missing.append(f"{label} (mark it on the timeline)")
            elif mark.frame_id is None:
                missing.append(f"{label} (no key frame at its mark: mark it again where the picture shows it)")
    missing += _surveillance(typed)
    return missing


def _surveillance(typed) -> list[str]:
    block = typed.surveillance
    if not block.confirmed or block.chosen_months is None:
        return [f"{SURVEILLANCE_LABEL} (confirm or change the suggestion)"]
    from .surveillance import suggest_interval

    # The interval, not the rule's wording: pathology arriving for the same interval (the
    # rule loses "provisional") needs no second confirmation; a different interval does.
    if suggest_interval(typed).months != block.suggested_months:
        return [f"{SURVEILLANCE_LABEL} (the suggestion changed since it was confirmed: confirm it again)"]
    return []


def _upper_gi(typed) -> list[str]:
    procedure = "upper_gi"
    missing = []
    if typed.extent is None:
        missing.append(field_label(procedure, "extent"))
    if typed.barrett:
        missing += [field_label(procedure, name) for name in ("prague_c_cm", "prague_m_cm")
                    if getattr(typed, name) is None]
    return missing


def _rows(procedure: str, typed) -> list[str]:
    missing = []
    for table in row_tables(procedure):
        for index, row in enumerate(getattr(typed, table)):
            missing += [field_label(procedure, f"{table}.{index}.{column}")
                        for column in ROW_REQUIRED.get(table, ()) if _empty(getattr(row, column))]
    return missing


def _unconfirmed_sources(session, procedure: str, typed) -> list[str]:
    from analysis.models import ReviewStatus

    linked = {}
    for table in row_tables(procedure):
        for index, row in enumerate(getattr(typed, table)):
            if getattr(row, "finding_id", None):
                linked[row.finding_id] = f"{table}.{index}"
    if not linked or getattr(session, "pk", None) is None:
        return []
    confirmed = {str(pk) for pk in session.findings.filter(
        review_status__in=[ReviewStatus.CONFIRMED, ReviewStatus.EDITED]).values_list("pk", flat=True)}
    return [f"{field_label(procedure, where)} (its finding is no longer confirmed: remove the row or confirm "
            f"the finding)" for finding_id, where in linked.items() if finding_id not in confirmed]


def sign_refusal(missing: list[str]) -> str:
    return "Structured report: fill in " + ", ".join(missing) + "."


def refuse_incomplete_report(sender, *, session, actor, **kwargs) -> None:
    """``session_signing`` receiver: runs in the sign-off transaction, the session locked."""
    report = StructuredReport.objects.filter(session=session).first()
    marks = TimelineMark.objects.filter(session=session)
    missing = missing_for_sign(session, report, marks)
    if missing:
        raise NotAllowed(sign_refusal(missing))
