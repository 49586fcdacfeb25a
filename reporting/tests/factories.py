"""Test data for structured reports."""

from __future__ import annotations

from analysis.models import Frame, FrameSource
from reporting import schema
from reporting.models import StructuredReport, TimelineMark

CECUM_REACHED_MS = 60_000
SCOPE_OUT_MS = CECUM_REACHED_MS + 7 * 60_000  # 7:00 withdrawal, above the 6 min target

COMMON = {
    "indication_kind": "screening",
    "indication_text": "Average-risk screening",
    "asa_class": "II",
    "sedation_level": "moderate",
    "sedation_agents": "Midazolam 2 mg",
    "complications": ["none"],
    "impression": "Normal examination.",
    "recommendations": "",
}

COMPLETE: dict[str, dict] = {
    "colonoscopy": {**COMMON, "extent": "cecum", "bbps_right": 2, "bbps_transverse": 3, "bbps_left": 3},
    "upper_gi": {**COMMON, "indication_kind": "diagnostic", "extent": "duodenum_d2", "barrett": False,
                 "la_grade": "none"},
    "bronchoscopy": {**COMMON, "indication_kind": "diagnostic", "segments_examined": ["trachea", "main_carina"]},
    "other": {**COMMON, "indication_kind": "diagnostic"},
}


def complete_data(procedure_type: str) -> dict:
    """A complete report's data for ``procedure_type`` (colonoscopy: surveillance confirmed
    at the suggested interval)."""
    data = dict(COMPLETE.get(procedure_type, COMPLETE["other"]))
    if procedure_type == "colonoscopy":
        from reporting.surveillance import suggest_interval

        suggestion = suggest_interval(schema.parse(procedure_type, data))
        data["surveillance"] = {"suggested_months": suggestion.months, "suggested_rule": suggestion.rule,
                                "chosen_months": suggestion.months, "confirmed": True, "note": ""}
    return schema.parse(procedure_type, data).model_dump(mode="json")


def complete_marks(session, *, actor, video=None) -> list[TimelineMark]:
    """Cecum reached, scope out (7:00 later) and both cecal landmarks with a key frame."""
    source = FrameSource.VIDEO if video is not None else FrameSource.LIVE
    times = {"cecum_reached": CECUM_REACHED_MS, "appendiceal_orifice": CECUM_REACHED_MS + 5_000,
             "ileocecal_valve": CECUM_REACHED_MS + 10_000, "scope_out": SCOPE_OUT_MS}
    marks = []
    for kind, time_ms in times.items():
        frame = None
        if kind != "scope_out":
            frame, _ = Frame.objects.get_or_create(session=session, video=video, source=source, timestamp_ms=time_ms,
                                                   defaults={"analysis_state": "skipped"})
        mark, _ = TimelineMark.objects.update_or_create(
            session=session, kind=kind,
            defaults={"time_ms": time_ms, "video": video, "frame": frame, "set_by": actor},
        )
        marks.append(mark)
    return marks


def complete_report(session, *, actor, video=None) -> StructuredReport:
    """Give ``session`` a complete, valid structured report (and, for a colonoscopy, the
    timeline marks with key frames), so that signing it is not refused for the report."""
    report, _ = StructuredReport.objects.update_or_create(
        session=session, defaults={"data": complete_data(session.procedure_type), "updated_by": actor},
    )
    if session.procedure_type == "colonoscopy":
        complete_marks(session, actor=actor, video=video)
    return report
