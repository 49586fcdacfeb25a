"""The structured report as the exported documents show it: one list of labelled sections.

The printable page, the PDF and ``report.txt`` all render ``structured_view(...).sections``
(rows of label + display value, and tables for polyps, ulcers, samples), so the three say the
same thing in the same order. ``structured_json`` is the bundle's machine-readable form:
the stored codes, their labels beside them and the computed values (BBPS total, withdrawal
time, cecal intubation, the surveillance decision).

Only a signed session's structured report is authoritative; before sign-off every document
labels it "Draft — not signed". Codes never reach a person: labels come from
``reporting.vocabulary``, times are m:ss (``reporting.withdrawal.format_duration``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from reporting import vocabulary as v
from reporting.labels import code_tables
from reporting.schema import ReportDataError, parse
from reporting.withdrawal import Withdrawal, format_duration, withdrawal_from_marks

from .formatting import frame_file_name

SIGNED_LABEL = "Signed"
DRAFT_LABEL = "Draft — not signed"
NO_REPORT = "No structured report"
LANDMARK_KINDS = tuple(code for code, _ in v.CECAL_LANDMARKS)


@dataclass(frozen=True)
class Row:
    key: str  # the report field it shows (stable, for tests and the FHIR mapping)
    label: str
    value: str
    long: bool = False  # multi-line free text: keep its line breaks


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    table: Table | None = None
    empty_text: str = ""  # what to say when a table has no rows


@dataclass(frozen=True)
class MarkRow:
    mark: Any
    kind: str
    label: str
    time_ms: int
    time_display: str
    recording: int | None  # the recording number the time is an offset into; None = live stream
    frame: Any | None  # the key frame (with a stored image) for a landmark mark

    @property
    def where(self) -> str:
        return f"Recording {self.recording} · {self.time_display}" if self.recording else self.time_display


@dataclass
class StructuredView:
    exists: bool
    is_final: bool
    procedure_type: str
    report: Any | None = None  # the parsed pydantic report
    error: str = ""  # stored data that no longer parses (shown, never hidden)
    withdrawal: Withdrawal | None = None
    marks: list[MarkRow] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    # Histology entered after sign-off (reporting.selectors.pathology_view "results"), oldest first.
    pathology: list[dict] = field(default_factory=list)

    @property
    def status_label(self) -> str:
        if not self.exists:
            return NO_REPORT
        return SIGNED_LABEL if self.is_final else DRAFT_LABEL

    @property
    def landmark_frames(self) -> list[MarkRow]:
        return [m for m in self.marks if m.kind in LANDMARK_KINDS and m.frame is not None]


# Display helpers -------------------------------------------------------------------------


def yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


def mm(value: float | None) -> str:
    return "" if value is None else f"{value:g} mm"


def cm(value: float | None) -> str:
    return "" if value is None else f"{value:g} cm"


def interval_text(months: int | None) -> str:
    """36 -> "Repeat colonoscopy in 3 years"; 0 -> "No surveillance colonoscopy"."""
    if months is None:
        return ""
    if months == 0:
        return "No surveillance colonoscopy"
    return f"Repeat colonoscopy in {interval_span(months)}"


def interval_span(months: int) -> str:
    if months % 12 == 0:
        years = months // 12
        return f"{years} year" + ("" if years == 1 else "s")
    return f"{months} month" + ("" if months == 1 else "s")


def location_label(procedure_type: str, code: str | None) -> str:
    return v.label(v.location_choices(procedure_type), code)


def field_tables(procedure_type: str) -> dict[str, v.Choices]:
    """The coded fields' tables (``reporting.labels.code_tables``), less the BBPS scores: they
    are numbers in the JSON, and their meaning is in the rows."""
    return {field: table for field, table in code_tables(procedure_type).items() if not field.startswith("bbps_")}


def labels_of(procedure_type: str, data: dict) -> dict:
    """The same shape as ``data``, with a label for every coded value (and nothing else)."""
    tables = field_tables(procedure_type)

    def walk(obj: dict) -> dict:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                out[key] = [walk(item) for item in value]
            elif key in tables and isinstance(value, list):
                out[key] = [v.label(tables[key], item) for item in value]
            elif key in tables and value not in (None, ""):
                out[key] = v.label(tables[key], value)
        return out

    return walk(data)


# Marks ------------------------------------------------------------------------------------


def mark_rows(marks) -> list[MarkRow]:
    rows = []
    for mark in sorted(marks, key=lambda m: (m.video.number if m.video_id else 0, m.time_ms)):
        frame = mark.frame if mark.frame_id and mark.frame is not None and mark.frame.image else None
        rows.append(MarkRow(
            mark=mark, kind=mark.kind, label=v.label(v.MARK_KINDS, mark.kind), time_ms=mark.time_ms,
            time_display=format_duration(mark.time_ms / 1000), recording=mark.video.number if mark.video_id else None,
            frame=frame,
        ))
    return rows


# Sections ---------------------------------------------------------------------------------


def _add(rows: list[Row], key: str, label: str, value: str, long: bool = False) -> None:
    if value:
        rows.append(Row(key, label, value, long))


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _common_sections(report, procedure_type: str) -> tuple[Section, list[Section]]:
    """(the opening "indication, ASA, sedation" section, the closing sections)."""
    opening = Section("patient", "Indication, ASA and sedation")
    _add(opening.rows, "indication", "Indication",
         _joined(v.label(v.INDICATION_KINDS, report.indication_kind), report.indication_text))
    _add(opening.rows, "asa_class", "ASA class", v.label(v.ASA_CLASSES, report.asa_class))
    _add(opening.rows, "sedation", "Sedation",
         _joined(v.label(v.SEDATION_LEVELS, report.sedation_level), report.sedation_agents))
    closing = []
    complications = Section("complications", "Complications")
    _add(complications.rows, "complications", "Complications",
         _joined(", ".join(v.label(v.COMPLICATIONS, c) for c in report.complications), report.complications_text))
    closing.append(complications)
    text = Section("conclusion", "Impression and recommendations")
    _add(text.rows, "impression", "Impression", report.impression, long=True)
    _add(text.rows, "recommendations", "Recommendations", report.recommendations, long=True)
    closing.append(text)
    return opening, closing


def withdrawal_text(withdrawal: Withdrawal) -> str:
    if withdrawal.seconds is None:
        return f"Not available: {withdrawal.problem}"
    minutes = v.WITHDRAWAL_TARGET_S // 60
    verdict = f"meets the {minutes} min target" if withdrawal.meets_target else f"below the {minutes} min target"
    return f"{format_duration(withdrawal.seconds)} ({verdict})"


def bbps_total_text(report) -> str:
    total = report.bbps_total
    if total is None:
        return ""
    verdict = ("adequate (every segment scored 2 or more)" if report.bbps_adequate
               else "inadequate (a segment scored below 2)")
    return f"{total} of 9, {verdict}"


def surveillance_rows(report) -> list[Row]:
    s = report.surveillance
    rows: list[Row] = []
    _add(rows, "surveillance.chosen", "Surveillance interval", interval_text(s.chosen_months))
    suggested = interval_text(s.suggested_months)
    if suggested or s.suggested_rule:
        _add(rows, "surveillance.suggested", "Suggested", _joined(suggested, s.suggested_rule))
    if s.chosen_months is not None and s.suggested_months is not None:
        changed = s.chosen_months != s.suggested_months
        _add(rows, "surveillance.changed", "Clinician's choice",
             "Changed from the suggestion by the clinician" if changed else "Same as the suggestion")
    if s.chosen_months is not None or s.suggested_months is not None:
        _add(rows, "surveillance.confirmed", "Confirmed by the clinician", yes_no(s.confirmed))
    _add(rows, "surveillance.note", "Surveillance note", s.note)
    return rows


def _colonoscopy_sections(report, marks: list[MarkRow], withdrawal: Withdrawal) -> list[Section]:
    pt = "colonoscopy"
    sections = []
    extent = Section("extent", "Extent")
    _add(extent.rows, "extent", "Extent reached", v.label(v.COLON_EXTENTS, report.extent))
    _add(extent.rows, "cecum_reached", "Cecum reached (cecal intubation)", yes_no(report.cecum_reached))
    if report.extent == "incomplete":
        _add(extent.rows, "incomplete_location", "Stopped at", location_label(pt, report.incomplete_location))
        _add(extent.rows, "incomplete_reason", "Reason for stopping",
             _joined(v.label(v.INCOMPLETE_REASONS, report.incomplete_reason), report.incomplete_text))
    by_kind = {m.kind: m for m in marks}
    for kind, label in v.CECAL_LANDMARKS:
        mark = by_kind.get(kind)
        if mark is not None:
            photo = ", key frame below" if mark.frame is not None else ", no key frame"
            _add(extent.rows, f"landmark.{kind}", label, f"Marked at {mark.where}{photo}")
    sections.append(extent)

    bbps = Section("bbps", "Bowel preparation (Boston Bowel Preparation Scale)")
    for segment, label in v.BBPS_SEGMENTS:
        score = getattr(report, f"bbps_{segment}")
        _add(bbps.rows, f"bbps_{segment}", label, v.label(v.BBPS_SCORES, None if score is None else str(score)))
    _add(bbps.rows, "bbps_total", "BBPS total", bbps_total_text(report))
    sections.append(bbps)

    timing = Section("withdrawal", "Withdrawal time")
    _add(timing.rows, "withdrawal", "Withdrawal time (cecum reached to scope out)", withdrawal_text(withdrawal))
    sections.append(timing)

    polyps = Section("polyps", "Polyps", empty_text="No polyps recorded.")
    polyps.table = Table(
        ("#", "Size", "Paris", "NICE", "Location", "Resection", "Retrieved", "Jar", "Histology"),
        tuple(
            (str(n), mm(p.size_mm), v.label(v.PARIS_CLASSES, p.paris), v.label(v.NICE_CLASSES, p.nice),
             location_label(pt, p.location), v.label(v.RESECTION_METHODS, p.resection), yes_no(p.retrieved),
             p.jar, v.label(v.POLYP_HISTOLOGY, p.histology))
            for n, p in enumerate(report.polyps, start=1)
        ),
    )
    sections.append(polyps)
    return sections


def _upper_gi_sections(report) -> list[Section]:
    pt = "upper_gi"
    exam = Section("extent", "Extent and findings")
    _add(exam.rows, "extent", "Extent reached", v.label(v.UPPER_GI_EXTENTS, report.extent))
    _add(exam.rows, "barrett", "Barrett's esophagus", yes_no(report.barrett))
    if report.prague_c_cm is not None or report.prague_m_cm is not None:
        prague = " ".join(p for p in (
            f"C{report.prague_c_cm:g}" if report.prague_c_cm is not None else "",
            f"M{report.prague_m_cm:g}" if report.prague_m_cm is not None else "") if p)
        _add(exam.rows, "prague", "Prague classification",
             f"{prague} (circumferential {cm(report.prague_c_cm) or 'not stated'}, "
             f"maximum {cm(report.prague_m_cm) or 'not stated'})")
    _add(exam.rows, "la_grade", "Esophagitis (Los Angeles)", v.label(v.LA_GRADES, report.la_grade))
    ulcers = Section("ulcers", "Ulcers", empty_text="No ulcers recorded.", table=Table(
        ("#", "Location", "Forrest class", "Size"),
        tuple((str(n), location_label(pt, u.location), v.label(v.FORREST_CLASSES, u.forrest), mm(u.size_mm))
              for n, u in enumerate(report.ulcers, start=1)),
    ))
    biopsies = Section("biopsies", "Biopsies", empty_text="No biopsies recorded.", table=Table(
        ("#", "Site", "Purpose", "Jar"),
        tuple((str(n), location_label(pt, b.site), b.purpose, b.jar) for n, b in enumerate(report.biopsies, start=1)),
    ))
    return [exam, ulcers, biopsies]


def _bronchoscopy_sections(report) -> list[Section]:
    pt = "bronchoscopy"
    exam = Section("segments", "Airway segments")
    _add(exam.rows, "segments_examined", "Segments examined",
         ", ".join(location_label(pt, s) for s in report.segments_examined))
    findings = Section("segment_findings", "Findings by segment", empty_text="No segment findings recorded.",
                       table=Table(("#", "Segment", "Finding"), tuple(
                           (str(n), location_label(pt, f.segment), f.text)
                           for n, f in enumerate(report.segment_findings, start=1))))
    samples = Section("samples", "Samples", empty_text="No samples recorded.", table=Table(
        ("#", "Kind", "Site", "Jar", "Note"),
        tuple((str(n), v.label(v.BRONCHO_SAMPLE_KINDS, s.kind), location_label(pt, s.site), s.jar, s.text)
              for n, s in enumerate(report.samples, start=1)),
    ))
    return [exam, findings, samples]


def _sections(report, procedure_type: str, marks: list[MarkRow], withdrawal: Withdrawal) -> list[Section]:
    opening, closing = _common_sections(report, procedure_type)
    if procedure_type == "colonoscopy":
        middle = _colonoscopy_sections(report, marks, withdrawal)
    elif procedure_type == "upper_gi":
        middle = _upper_gi_sections(report)
    elif procedure_type == "bronchoscopy":
        middle = _bronchoscopy_sections(report)
    else:
        middle = []
    sections = [opening, *middle, *closing]
    if procedure_type == "colonoscopy":
        surveillance = Section("surveillance", "Surveillance", rows=surveillance_rows(report))
        sections.append(surveillance)
    # A section with nothing filled in is left out (a table section keeps its "none" line).
    return [s for s in sections if s.rows or s.table is not None]


def pathology_section(items: list[dict], suggestion) -> Section:
    """The pathology results entered after sign-off, and the suggestion with them (the signed
    report's own rows above are left as signed)."""
    from django.utils import timezone

    section = Section("pathology", "Pathology results (entered after sign-off)")
    _add(section.rows, "pathology.surveillance", "Surveillance suggestion with pathology",
         f"{suggestion.display} ({suggestion.rule})")
    section.table = Table(
        ("#", "Polyp", "Histology", "Note", "Entered by", "Entered at", "Status"),
        tuple((str(item["polyp_number"] or ""), item["polyp"], item["histology_label"], item["note"],
               item["entered_by"], f"{timezone.localtime(item['created_at']):%Y-%m-%d %H:%M}",
               "Current" if item["current"] else "Replaced by a later result") for item in items),
    )
    return section


def structured_view(*, session, record, marks, is_final: bool, pathology=None) -> StructuredView:
    """``record``: the session's StructuredReport or None; ``marks``: its TimelineMark rows
    (with ``video`` and ``frame`` loaded); ``pathology``: its PathologyResult rows (loaded
    here when not given; only a signed colonoscopy has any)."""
    procedure_type = session.procedure_type
    rows = mark_rows(marks)
    view = StructuredView(exists=record is not None, is_final=is_final, procedure_type=procedure_type, marks=rows)
    if record is None:
        return view
    try:
        report = parse(procedure_type, record.data)
    except ReportDataError as exc:
        # Stored data is validated on every write; if a schema change ever made it unreadable,
        # the document says so instead of silently dropping the clinician's report.
        view.error = f"The stored structured report could not be read ({exc})."
        return view
    view.report = report
    view.withdrawal = withdrawal_from_marks([r.mark for r in rows]) if procedure_type == "colonoscopy" else None
    view.sections = _sections(report, procedure_type, rows, view.withdrawal)
    if procedure_type == "colonoscopy" and is_final:
        from reporting.pathology import polyp_number
        from reporting.selectors import pathology_view

        shown = pathology_view(session, report=record, results=pathology)
        view.pathology = [{**item, "polyp_number": polyp_number(report, item["polyp_id"])}
                          for item in shown["results"]]
        if view.pathology:
            view.sections.append(pathology_section(view.pathology, shown["suggestion"]))
    return view


def mark_json(row: MarkRow, frame_file: str | None = None) -> dict:
    return {
        "kind": row.kind, "label": row.label, "time_ms": row.time_ms, "time_display": row.time_display,
        "recording": row.recording, "video": str(row.mark.video_id) if row.mark.video_id else None,
        "frame": str(row.frame.pk) if row.frame is not None else None, "frame_file": frame_file,
    }


def structured_json(view: StructuredView) -> dict:
    """The bundle's ``structured_report`` object: codes as stored, labels beside them, and the
    computed values a reader would otherwise have to derive."""
    out: dict[str, Any] = {
        "exists": view.exists,
        "status": "none" if not view.exists else ("signed" if view.is_final else "draft"),
        "status_label": view.status_label,
        "authoritative": view.exists and view.is_final,
        "procedure_type": view.procedure_type,
    }
    if view.error:
        out["error"] = view.error
    report = view.report
    if report is None:
        return out
    data = report.model_dump(mode="json")
    out["data"] = data
    out["labels"] = labels_of(view.procedure_type, data)
    if view.procedure_type == "colonoscopy":
        w = view.withdrawal
        s = report.surveillance
        out.update({
            "bbps_total": report.bbps_total,
            "bbps_adequate": report.bbps_adequate,
            "cecum_reached": report.cecum_reached,
            "withdrawal_s": w.seconds,
            "withdrawal_display": format_duration(w.seconds),
            "withdrawal_meets_target": w.meets_target,
            "withdrawal_target_s": v.WITHDRAWAL_TARGET_S,
            "withdrawal_problem": w.problem or None,
            "surveillance": {
                **s.model_dump(mode="json"),
                "chosen_display": interval_text(s.chosen_months) or None,
                "suggested_display": interval_text(s.suggested_months) or None,
                "changed_by_clinician": (s.chosen_months != s.suggested_months
                                         if s.chosen_months is not None and s.suggested_months is not None else None),
            },
        })
    if view.procedure_type == "colonoscopy":
        out["pathology"] = [
            {"polyp_id": item["polyp_id"], "polyp_number": item["polyp_number"], "polyp": item["polyp"],
             "histology": item["histology"], "histology_label": item["histology_label"], "note": item["note"],
             "entered_by": item["entered_by"], "entered_at": item["created_at"].isoformat(),
             "current": item["current"]}
            for item in view.pathology
        ]
    out["sections"] = [
        {"title": s.title, "rows": [{"label": r.label, "value": r.value} for r in s.rows],
         **({"table": {"headers": list(s.table.headers), "rows": [list(r) for r in s.table.rows]}} if s.table else {})}
        for s in view.sections
    ]
    return out


def text_lines(view: StructuredView, width: int = 88) -> list[str]:
    """``report.txt``'s "Structured report" section (same rows as the page and the PDF)."""
    out = [f"Structured report ({view.status_label})", "-" * width]
    if not view.exists:
        return out + ["    No structured report.", ""]
    if view.error:
        return out + [f"    {view.error}", ""]
    if not view.is_final:
        out.append("    DRAFT: not signed; the structured report may still change.")
    for section in view.sections:
        out.append(f"  {section.title}")
        for row in section.rows:
            prefix = f"    {row.label}: "
            for n, paragraph in enumerate(row.value.splitlines() or [""]):
                out.extend(textwrap.wrap(paragraph, width, initial_indent=prefix if n == 0 else " " * 6,
                                         subsequent_indent=" " * 6) or [prefix.rstrip()])
        if section.table is not None:
            if not section.table.rows:
                out.append(f"    {section.empty_text}")
            for cells in section.table.rows:
                pairs = [f"{h}: {c}" for h, c in zip(section.table.headers[1:], cells[1:]) if c]
                out.extend(textwrap.wrap(f"{cells[0]}. " + "; ".join(pairs), width, initial_indent="    ",
                                         subsequent_indent="       "))
    landmarks = view.landmark_frames
    if landmarks:
        out.append("  Landmark key frames")
        for m in landmarks:
            out.append(f"    {m.label} ({m.where}): frames/{frame_file_name(m.frame)}")
    out.append("")
    return out
