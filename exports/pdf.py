"""The printable report as a PDF (reportlab platypus), with the print page's content.

Same sources as the page and ``report.txt``: the snapshot's finding and recording rows
(``exports.report``) and the structured report's sections (``exports.structured``), so the
three never disagree. Every text that comes from a person or a model goes through
``_text``: reportlab's Paragraph parses a small XML markup (``<b>``, ``<font>``, ``&amp;``),
and un-escaped user text would be interpreted, or break the build on a stray ``<``.

Fonts are the PDF standard Helvetica family (no font files to ship); characters outside
Western European Latin (cp1252) show as placeholder boxes in the PDF (the page, report.txt
and the JSON keep them).
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .disclaimer import disclaimer
from .formatting import iso
from .frames import read_frame
from .report import finding_rows, recording_rows, summary_counts
from .selectors import ExportSnapshot

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 15 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
THUMB_WIDTH = 45 * mm

_base = getSampleStyleSheet()
STYLES = {
    "title": ParagraphStyle("mv-title", parent=_base["Title"], alignment=TA_LEFT, fontSize=17, spaceAfter=4),
    "h2": ParagraphStyle("mv-h2", parent=_base["Heading2"], fontSize=12.5, spaceBefore=10, spaceAfter=4),
    "h3": ParagraphStyle("mv-h3", parent=_base["Heading3"], fontSize=10.5, spaceBefore=6, spaceAfter=2),
    "body": ParagraphStyle("mv-body", parent=_base["Normal"], fontSize=9.5, leading=12),
    "small": ParagraphStyle("mv-small", parent=_base["Normal"], fontSize=8, leading=10),
    "cell": ParagraphStyle("mv-cell", parent=_base["Normal"], fontSize=8.5, leading=10.5),
    "notice": ParagraphStyle("mv-notice", parent=_base["Normal"], fontSize=9, leading=11.5,
                             textColor=colors.HexColor("#5a3200")),
    "status": ParagraphStyle("mv-status", parent=_base["Normal"], fontSize=11, leading=14,
                             fontName="Helvetica-Bold"),
}
GRID = colors.HexColor("#c8cdd8")


def _text(value) -> str:
    """Plain text for reportlab's markup: escaped, line breaks kept."""
    return escape(str(value if value is not None else "")).replace("\r\n", "\n").replace("\n", "<br/>")


def _p(value, style: str = "body", bold_prefix: str = "") -> Paragraph:
    prefix = f"<b>{_text(bold_prefix)}</b> " if bold_prefix else ""
    return Paragraph(prefix + _text(value), STYLES[style])


def _key_value_table(rows: list[tuple[str, str]]) -> Table:
    table = Table([[_p(label, "cell"), _p(value, "cell")] for label, value in rows],
                  colWidths=[52 * mm, CONTENT_WIDTH - 52 * mm])
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f3f5f9")),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _grid_table(headers, rows, widths=None) -> Table:
    data = [[Paragraph(f"<b>{_text(h)}</b>", STYLES["cell"]) for h in headers]]
    data += [[_p(cell, "cell") for cell in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, GRID),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ebf2")),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _image(frame, width: float = THUMB_WIDTH):
    """The frame's JPEG scaled to ``width``, or None when it cannot be read (the text says so)."""
    content = read_frame(frame)
    if content is None:
        return None
    try:
        w, h = ImageReader(io.BytesIO(content)).getSize()
    except Exception:  # noqa: BLE001 - a corrupt JPEG must not stop the report
        return None
    return Image(io.BytesIO(content), width=width, height=width * h / w if w else width * 0.75)


def _notice(snapshot: ExportSnapshot) -> Table:
    notice = disclaimer(is_final=snapshot.is_final, contains_demo_output=snapshot.contains_demo_output)
    box = Table([[_p(notice["text"], "notice")]], colWidths=[CONTENT_WIDTH])
    box.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 1.2, colors.HexColor("#8a4b00")),
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff8e6")),
        ("LEFTPADDING", (0, 0), (-1, -1), 6), ("RIGHTPADDING", (0, 0), (-1, -1), 6),
    ]))
    return box


def _session_flowables(snapshot: ExportSnapshot) -> list:
    session = snapshot.session
    date_label, date_value, _ = snapshot.procedure_date
    rows = [
        ("Title", session.title),
        ("Procedure", f"{session.get_procedure_type_display()} ({session.get_mode_display().lower()})"),
        ("Clinician", session.clinician.get_username()),
        ("Patient ref.", session.patient_ref or "—"),
        ("Encounter ref.", session.encounter_ref or "—"),
        (date_label, iso(date_value) or "—"),
        ("Ended", iso(session.ended_at) or "—"),
        ("Session id", str(session.pk)),
    ]
    return [Paragraph("Session", STYLES["h2"]), _key_value_table(rows)]


def _structured_flowables(snapshot: ExportSnapshot) -> list:
    view = snapshot.structured
    out: list = [Paragraph(f"Structured report <font size=10>({_text(view.status_label)})</font>", STYLES["h2"])]
    if not view.exists:
        return out + [_p("No structured report.")]
    if view.error:
        return out + [_p(view.error)]
    if not view.is_final:
        out.append(_p("DRAFT: not signed; the structured report may still change.", "status"))
    for section in view.sections:
        block: list = [Paragraph(_text(section.title), STYLES["h3"])]
        if section.rows:
            block.append(_key_value_table([(r.label, r.value) for r in section.rows]))
        if section.table is not None:
            if section.table.rows:
                block.append(_grid_table(section.table.headers, section.table.rows))
            else:
                block.append(_p(section.empty_text))
        # A heading never ends a page alone (a long table still splits across pages).
        out.append(KeepTogether(block))
    landmarks = view.landmark_frames
    if landmarks:
        out.append(Paragraph("Landmark key frames", STYLES["h3"]))
        cells = []
        for mark in landmarks:
            image = _image(mark.frame, 55 * mm)
            caption = _p(f"{mark.label} ({mark.where})", "small")
            cells.append([image, caption] if image is not None else [_p("Key frame unavailable.", "small"), caption])
        table = Table([cells], colWidths=[CONTENT_WIDTH / len(cells)] * len(cells))
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        out.append(table)
    return out


def _finding_flowables(snapshot: ExportSnapshot) -> list:
    counts = summary_counts(snapshot)
    heading = "Findings in the signed report" if snapshot.is_final else "All findings (with review status)"
    by_risk = counts["by_risk"]
    out: list = [Paragraph(
        f"{_text(heading)} <font size=9>({counts['findings_shown']}: {by_risk['high']} high, "
        f"{by_risk['medium']} medium, {by_risk['low']} low risk)</font>", STYLES["h2"])]
    rows = finding_rows(snapshot)
    if not rows:
        out.append(_p("No findings" + (" in the signed report." if snapshot.is_final else ".")))
    for row in rows:
        demo = " [DEMO MODEL OUTPUT]" if row["is_demo"] else ""
        text = [Paragraph(f"<b>{row['number']}. {_text(row['title'])}</b>{_text(demo)}", STYLES["body"])]
        facts = " · ".join(p for p in (row["where"] + "–" + row["end"], row["category"], row["location"],
                                       f"{row['risk']} risk", row["size"]) if p)
        text.append(_p(facts, "small"))
        reviewed = f" by {row['reviewed_by']}" if row["reviewed_by"] else ""
        text.append(_p(f"Status: {row['status']} ({row['origin']}){reviewed}", "small"))
        if row["description"]:
            text.append(_p(row["description"]))
        if row["next_step"]:
            text.append(_p(row["next_step"], bold_prefix=f"{row['next_step_label']}:"))
        if row["note"]:
            text.append(_p(row["note"], bold_prefix="Clinician note:"))
        image = _image(snapshot.key_frames[row["key_frame_id"]]) if row["key_frame_id"] else None
        cells = [[text, image]] if image is not None else [[text, ""]]
        table = Table(cells, colWidths=[CONTENT_WIDTH - THUMB_WIDTH - 4 * mm, THUMB_WIDTH + 4 * mm])
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEABOVE", (0, 0), (-1, 0), 0.25, GRID)]))
        out.append(table)
    reviewed = counts["all_findings_by_review_status"]
    times = ("offsets into the recording named with each finding" if snapshot.session.mode == "recorded"
             else "the live stream's media time")
    out.append(_p(f"Times are {times} (m:ss). Review status of all findings: confirmed "
                  f"{reviewed.get('confirmed', 0)}, edited {reviewed.get('edited', 0)}, rejected "
                  f"{reviewed.get('rejected', 0)}, undecided {reviewed.get('proposed', 0)}.", "small"))
    return out


def _closing_flowables(snapshot: ExportSnapshot) -> list:
    session = snapshot.session
    out: list = []
    recordings = recording_rows(snapshot)
    if recordings:
        out.append(Paragraph("Recordings", STYLES["h2"]))
        out.append(_grid_table(("Recording", "Duration", "Findings shown", "SHA-256"),
                               [(r["name"], r["duration"] or "—", str(r["findings_shown"]), r["sha256"])
                                for r in recordings],
                               widths=[25 * mm, 25 * mm, 25 * mm, CONTENT_WIDTH - 75 * mm]))
    if session.notes:
        out += [Paragraph("Clinician notes", STYLES["h2"]), _p(session.notes)]
    if snapshot.addenda:
        out.append(Paragraph("Addenda", STYLES["h2"]))
        for addendum in snapshot.addenda:
            out.append(_p(addendum.text, bold_prefix=f"{iso(addendum.created_at)}, {addendum.author.get_username()}:"))
    if snapshot.provenance:
        out.append(Paragraph("Models used", STYLES["h2"]))
        for p in snapshot.provenance:
            demo = " (DEMO: random weights, not a medical model)" if p["is_demo"] else ""
            revision = f" {p['model_revision']}" if p["model_revision"] else ""
            out.append(_p(f"{p['backend']}: {p['model_id']}{revision}, prompt {p['prompt_version']}{demo}", "small"))
    signed = (f"Signed by {session.signed_by.get_username()} at {iso(session.signed_at)}." if snapshot.is_final
              else "Not signed.")
    out += [Spacer(1, 6 * mm), _p(f"{signed} Exported {iso(snapshot.exported_at)} by {snapshot.exported_by or '-'}.")]
    return out


def build_pdf(snapshot: ExportSnapshot) -> bytes:
    session = snapshot.session
    status = "FINAL — signed report" if snapshot.is_final else "PRELIMINARY — not signed"
    footer = f"MedVision · NOT FOR CLINICAL USE · {status} · session {session.pk}"

    def on_page(canvas, doc):
        # Every page carries the notice: a printed page can be separated from the first one.
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(MARGIN, 8 * mm, footer)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, 8 * mm, f"Page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN + 4 * mm,
        title=f"{session.get_procedure_type_display()} report", author="MedVision",
        subject="Not for clinical use", creator="MedVision",
    )
    story: list = [
        Paragraph(f"{_text(session.get_procedure_type_display())} report", STYLES["title"]),
        _p(status, "status"),
        Spacer(1, 2 * mm),
        _notice(snapshot),
        *_session_flowables(snapshot),
        *_structured_flowables(snapshot),
        *_finding_flowables(snapshot),
        *_closing_flowables(snapshot),
    ]
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()
