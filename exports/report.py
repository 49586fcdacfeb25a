"""The human-readable report: plain text for the bundle, context for the printable page.

Both are rendered from the same rows, so the zip's ``report.txt`` and the page a clinician
prints say the same thing.
"""

from __future__ import annotations

import textwrap

from analysis.engine.schemas import RISKS_HIGHEST_FIRST
from medvision.timefmt import format_duration, format_ms
from procedures.models import SessionMode

from .disclaimer import disclaimer
from .formatting import frame_file_name, iso, label_of
from .selectors import ExportSnapshot
from .structured import text_lines

__all__ = ["frame_file_name", "finding_rows", "recording_rows", "render_text", "report_context", "summary_counts"]

WIDTH = 88


def recording_name(finding) -> str:
    """"Recording 2" for a recorded finding, "" for a live stream's (its times are the
    stream's)."""
    return finding.video.display_name if finding.video_id else ""


def next_step_by_ai(finding) -> bool:
    """Whether the finding's next step is the model's: an AI proposal whose next step the
    clinician left as proposed. A clinician's own finding, or a next step the clinician
    typed over the model's (``ai_original`` keeps what it said), is the clinician's."""
    if finding.origin != "ai":
        return False
    original = finding.ai_original
    if original is None:
        return True
    return (original.get("suggested_next_step") or "") == (finding.suggested_next_step or "")


def next_step_label(finding) -> str:
    return "Suggested next step (AI)" if next_step_by_ai(finding) else "Next step (clinician)"


def finding_rows(snapshot: ExportSnapshot) -> list[dict]:
    rows = []
    for number, finding in enumerate(snapshot.findings, start=1):
        frame_id = str(finding.frame_id) if finding.frame_id else None
        recording = recording_name(finding)
        # People read times as the player shows them (m:ss); findings.csv/json keep the ms.
        start, end = format_ms(finding.start_ms), format_ms(finding.end_ms)
        rows.append({
            "number": number,
            "finding": finding,
            "id": str(finding.pk),
            "start": start,
            "end": end,
            # Which recording the times are offsets into, and the times: "Recording 2 · 3:12".
            "recording": recording,
            "recording_number": finding.video.number if finding.video_id else None,
            "where": f"{recording} · {start}" if recording else start,
            "title": finding.label or label_of(finding.category),
            "category": label_of(finding.category),
            "location": label_of(finding.location) or "Not stated",
            "risk": finding.get_risk_display(),
            "size": f"{finding.size_mm:g} mm" if finding.size_mm is not None else "",
            "status": finding.get_review_status_display(),
            "origin": finding.get_origin_display(),
            "reviewed_by": finding.reviewed_by.get_username() if finding.reviewed_by_id else "",
            "reviewed_at": iso(finding.reviewed_at) or "",
            "description": finding.description,
            "next_step": finding.suggested_next_step,
            "next_step_label": next_step_label(finding),
            "next_step_by_ai": next_step_by_ai(finding),
            "note": finding.clinician_note,
            "is_demo": finding.is_demo,
            "model": finding.model_id,
            "key_frame_id": frame_id if frame_id in snapshot.key_frames else None,
        })
    return rows


def recording_rows(snapshot: ExportSnapshot) -> list[dict]:
    """The session's recordings as the documents name them (never the uploaded file name:
    it can carry patient details)."""
    shown = {}
    for finding in snapshot.findings:
        if finding.video_id:
            shown[finding.video_id] = shown.get(finding.video_id, 0) + 1
    return [
        {"video": v, "id": str(v.pk), "number": v.number, "name": v.display_name, "duration_s": v.duration_s,
         "duration": format_duration(v.duration_s) if v.duration_s is not None else "",
         "sha256": v.sha256, "findings_shown": shown.get(v.pk, 0)}
        for v in snapshot.videos
    ]


def summary_counts(snapshot: ExportSnapshot) -> dict:
    by_risk: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for finding in snapshot.findings:
        by_risk[finding.risk] = by_risk.get(finding.risk, 0) + 1
        by_category[finding.category] = by_category.get(finding.category, 0) + 1
    return {
        "findings_shown": len(snapshot.findings),
        "by_risk": {risk: by_risk.get(risk, 0) for risk in RISKS_HIGHEST_FIRST},
        "by_category": dict(sorted(by_category.items())),
        "all_findings_by_review_status": snapshot.review_counts,
    }


def report_context(snapshot: ExportSnapshot) -> dict:
    session = snapshot.session
    date_label, date_value, _ = snapshot.procedure_date
    return {
        "structured": snapshot.structured,
        "procedure_date_label": date_label,
        "procedure_date": date_value,
        "snapshot": snapshot,
        "session": session,
        "rows": finding_rows(snapshot),
        "recordings": recording_rows(snapshot),
        "counts": summary_counts(snapshot),
        "disclaimer": disclaimer(is_final=snapshot.is_final, contains_demo_output=snapshot.contains_demo_output),
        "is_final": snapshot.is_final,
        "addenda": snapshot.addenda,
        "provenance": snapshot.provenance,
    }


def _wrap(text: str, indent: str = "    ") -> list[str]:
    lines = []
    for paragraph in str(text).splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent])
    return lines


def render_text(snapshot: ExportSnapshot) -> str:
    session = snapshot.session
    notice = disclaimer(is_final=snapshot.is_final, contains_demo_output=snapshot.contains_demo_output)
    status = "FINAL (signed)" if snapshot.is_final else "PRELIMINARY (not signed)"
    out = [
        "MedVision procedure report".upper(),
        "=" * WIDTH,
        *_wrap(notice["text"], indent=""),
        "",
        f"Document:        {status}",
        f"Procedure:       {session.get_procedure_type_display()} ({session.get_mode_display().lower()})",
        f"Title:           {session.title}",
        f"Session id:      {session.pk}",
        f"Patient ref:     {session.patient_ref or '-'}",
        f"Encounter ref:   {session.encounter_ref or '-'}",
        f"Clinician:       {session.clinician.get_username()}",
        f"{snapshot.procedure_date[0] + ':':<16} {iso(snapshot.procedure_date[1]) or '-'}",
        f"Ended:           {iso(session.ended_at) or '-'}",
    ]
    if snapshot.is_final:
        out.append(f"Signed by:       {session.signed_by.get_username()} at {iso(session.signed_at)}")
    out += [f"Exported:        {iso(snapshot.exported_at)} by {snapshot.exported_by or '-'}", ""]

    out += text_lines(snapshot.structured, WIDTH)

    counts = summary_counts(snapshot)
    heading = "Findings in the signed report" if snapshot.is_final else "All findings (preliminary, with review status)"
    out += [heading, "-" * WIDTH]
    if not snapshot.findings:
        out.append("    None.")
    for row in finding_rows(snapshot):
        size = f", {row['size']}" if row["size"] else ""
        demo = " [DEMO MODEL OUTPUT]" if row["is_demo"] else ""
        out.append(f"{row['number']:>2}. [{row['where']} - {row['end']}] {row['title']}{demo}")
        out.append(f"    {row['category']} | {row['location']} | risk {row['risk'].lower()}{size}")
        out.append(f"    Status: {row['status']} ({row['origin'].lower()})"
                   + (f", reviewed by {row['reviewed_by']} at {row['reviewed_at']}" if row["reviewed_by"] else ""))
        if row["description"]:
            out += _wrap(f"Description: {row['description']}")
        if row["next_step"]:
            out += _wrap(f"{row['next_step_label']}: {row['next_step']}")
        if row["note"]:
            out += _wrap(f"Clinician note: {row['note']}")
        if row["key_frame_id"]:
            out.append(f"    Key frame: frames/{frame_file_name(snapshot.key_frames[row['key_frame_id']])}")
        out.append("")
    reviewed = ", ".join(f"{k} {v}" for k, v in counts["all_findings_by_review_status"].items())
    out += [f"Review status of all findings: {reviewed}", ""]
    recordings = recording_rows(snapshot)
    if recordings:
        out += ["Recordings", "-" * WIDTH]
        for r in recordings:
            out.append(f"  {r['name']}: duration {r['duration'] or 'unknown'}, {r['findings_shown']} finding(s) "
                       f"shown, sha256 {r['sha256']}")
        out.append("")

    if session.notes:
        out += ["Clinician notes", "-" * WIDTH, *_wrap(session.notes, indent=""), ""]
    if snapshot.addenda:
        out += ["Addenda (after sign-off)", "-" * WIDTH]
        for addendum in snapshot.addenda:
            out.append(f"  {iso(addendum.created_at)} {addendum.author.get_username()}:")
            out += _wrap(addendum.text)
        out.append("")
    if snapshot.provenance:
        out += ["Models used", "-" * WIDTH]
        for p in snapshot.provenance:
            demo = " (DEMO: random weights, not a medical model)" if p["is_demo"] else ""
            revision = f" {p['model_revision']}" if p["model_revision"] else ""
            out.append(f"  {p['backend']}: {p['model_id']}{revision}, prompt {p['prompt_version']}{demo}")
        out.append("")
    if session.mode == SessionMode.RECORDED:
        out.append("Times are offsets into the recording named with each finding (m:ss).")
    else:
        out.append("Times are the live stream's media time (m:ss).")
    return "\n".join(out) + "\n"

