"""The documentation bundle: one zip a person or an archive can keep.

Contents (all at the top level of the zip):
- ``metadata.json``   session, clinician, times, recordings (number, id, duration, sha256),
                      models used, export time, final/preliminary, disclaimer (demo flag,
                      Health AI Developer Foundations notice), the structured report
                      (``structured_report``: codes, labels, computed values) and the
                      timeline marks;
- ``summary.json``    counts by risk, category and review status; recording summaries; the
                      findings shown, each with its ``recording`` (number) and ``video`` (id);
- ``findings.csv``    one row per finding (UTF-8 with BOM, formula-safe cells), with its
                      recording number and video id;
- ``findings.json``   the same findings in the API's finding JSON;
- ``report.txt``      the human-readable report;
- ``report.pdf``      the printable report as a PDF (the same content as the print page);
- ``frames/*.jpg``    key frames of the findings shown and of the cecal landmarks;
- ``transcript.json`` / ``transcript.txt``   voice copilot conversations, when there were any;
- ``manifest.json``   sha256 and size of every other file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from analysis.serializers import finding_event

from .disclaimer import disclaimer
from .formatting import frame_file_name, iso, media_time
from .frames import read_frame
from .pdf import build_pdf
from .report import recording_rows, render_text, summary_counts
from .selectors import ExportSnapshot
from .structured import mark_json, structured_json

__all__ = ["build_bundle", "findings_csv", "metadata", "read_frame", "safe_cell", "summary", "transcript"]

FORMAT_VERSION = "1"

CSV_COLUMNS = [
    "finding_id", "session_id", "recording", "video_id", "start_ms", "start_time", "end_ms", "end_time", "category", "label",
    "location", "risk", "confidence", "size_mm", "description", "suggested_next_step", "review_status",
    "reviewed_by", "reviewed_at", "clinician_note", "origin", "frame_id", "frame_file", "is_demo",
    "backend", "model_id", "model_revision", "prompt_version", "latency_ms", "generation_params",
]

# A spreadsheet treats a cell starting with one of these as a formula (or, for tab and CR,
# may shift it into one): "=cmd|' /C calc'!A0" in a model's label must stay text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def _json_bytes(data) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")


def structured_parts(snapshot: ExportSnapshot) -> dict:
    """``structured_report`` and ``marks``, as metadata.json and summary.json both carry them."""
    view = snapshot.structured
    return {
        "structured_report": structured_json(view),
        # Times in ms (machine-readable) with their m:ss display beside them.
        "marks": [mark_json(m, f"frames/{frame_file_name(m.frame)}" if m.frame is not None else None)
                  for m in view.marks],
    }


def metadata(snapshot: ExportSnapshot) -> dict:
    session = snapshot.session
    date_label, date_value, date_source = snapshot.procedure_date
    return {
        "format": "medvision-bundle",
        "format_version": FORMAT_VERSION,
        "document_status": snapshot.document_status,
        "session": {
            "id": str(session.pk),
            "title": session.title,
            "procedure_type": session.procedure_type,
            "procedure_type_display": session.get_procedure_type_display(),
            "mode": session.mode,
            "status": session.status,
            "patient_ref": session.patient_ref,
            "encounter_ref": session.encounter_ref,
            "clinician": session.clinician.get_username(),
            "created_at": iso(session.created_at),
            "started_at": iso(session.started_at),
            "ended_at": iso(session.ended_at),
            "signed_by": session.signed_by.get_username() if session.signed_by_id else None,
            "signed_at": iso(session.signed_at),
            # The procedure's date for people: the start, or for a recorded session the
            # first recording's upload time ("recording_uploaded_at"), labelled as such.
            "procedure_date": iso(date_value),
            "procedure_date_source": date_source,
            "procedure_date_label": date_label,
        },
        # The recordings findings' times refer to (a finding's "recording" is a number here).
        # Never the uploaded file name: it can carry patient details.
        "recordings": [
            {"number": r["number"], "name": r["name"], "video": r["id"], "duration_s": r["duration_s"],
             "sha256": r["sha256"], "findings_shown": r["findings_shown"]}
            for r in recording_rows(snapshot)
        ],
        "models": snapshot.provenance,
        "exported_at": iso(snapshot.exported_at),
        "exported_by": snapshot.exported_by,
        "disclaimer": disclaimer(is_final=snapshot.is_final, contains_demo_output=snapshot.contains_demo_output),
        **structured_parts(snapshot),
    }


def _with_recording(video_summary: dict, video) -> dict:
    """A recording's stored summary, its top findings naming the recording they are in."""
    if not video_summary:
        return video_summary
    top = [{**t, "recording": video.number, "video": str(video.pk)} for t in video_summary.get("top_findings", [])]
    return {**video_summary, "top_findings": top} if "top_findings" in video_summary else dict(video_summary)


def summary(snapshot: ExportSnapshot) -> dict:
    return {
        **summary_counts(snapshot),
        "videos": [
            {
                # Not the uploaded file name: it can carry patient details.
                "id": str(v.pk), "number": v.number, "name": v.display_name, "duration_s": v.duration_s, "fps": v.fps, "width": v.width, "height": v.height,
                "container": v.container, "codec": v.codec, "state": v.state, "sha256": v.sha256,
                "gate_counts": v.gate_counts, "summary": _with_recording(v.summary, v),
            }
            for v in snapshot.videos
        ],
        # Every finding shown, with the recording (number and id) its times refer to.
        "findings": [
            {"id": str(f.pk), "recording": f.video.number if f.video_id else None,
             "video": str(f.video_id) if f.video_id else None, "start_ms": f.start_ms, "end_ms": f.end_ms,
             "start_time": media_time(f.start_ms), "risk": f.risk, "category": f.category,
             "review_status": f.review_status}
            for f in snapshot.findings
        ],
        "notes": snapshot.session.notes,
        "addenda": [
            {"author": a.author.get_username(), "created_at": iso(a.created_at), "text": a.text,
             "finding": str(a.finding_id) if getattr(a, "finding_id", None) else None}
            for a in snapshot.addenda
        ],
        **structured_parts(snapshot),
    }


def findings_csv(snapshot: ExportSnapshot) -> bytes:
    buffer = io.StringIO()
    # The BOM makes Excel read the file as UTF-8 (without it, accented text is garbled).
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for f in snapshot.findings:
        frame_id = str(f.frame_id) if f.frame_id else ""
        frame = snapshot.key_frames.get(frame_id)
        row = {
            "finding_id": f.pk, "session_id": f.session_id,
            "recording": f.video.number if f.video_id else "", "video_id": f.video_id or "",
            "start_ms": f.start_ms, "start_time": media_time(f.start_ms),
            "end_ms": f.end_ms, "end_time": media_time(f.end_ms), "category": f.category, "label": f.label,
            "location": f.location, "risk": f.risk, "confidence": f.confidence, "size_mm": f.size_mm,
            "description": f.description, "suggested_next_step": f.suggested_next_step,
            "review_status": f.review_status,
            "reviewed_by": f.reviewed_by.get_username() if f.reviewed_by_id else "",
            "reviewed_at": iso(f.reviewed_at), "clinician_note": f.clinician_note, "origin": f.origin,
            "frame_id": frame_id, "frame_file": f"frames/{frame_file_name(frame)}" if frame else "",
            "is_demo": f.is_demo, "backend": f.backend, "model_id": f.model_id, "model_revision": f.model_revision,
            "prompt_version": f.prompt_version, "latency_ms": f.latency_ms, "generation_params": f.generation_params,
        }
        writer.writerow([safe_cell(row[c]) for c in CSV_COLUMNS])
    return buffer.getvalue().encode("utf-8")


def transcript(snapshot: ExportSnapshot, conversations=None, heading="MedVision voice copilot transcript"):
    conversations = snapshot.conversations if conversations is None else conversations
    data = {"session": str(snapshot.session.pk), "conversations": []}
    lines = [heading, "NOT FOR CLINICAL USE: assistant answers are AI output.", ""]
    for c in conversations:
        data["conversations"].append({
            "id": c.id, "user": c.user, "model": c.model, "started_at": iso(c.started_at),
            "ended_at": iso(c.ended_at),
            "utterances": [
                {"role": u.role, "text": u.text, "created_at": iso(u.created_at), "tool_name": u.tool_name or None,
                 "tool_arguments": u.tool_arguments, "tool_result": u.tool_result}
                for u in c.utterances
            ],
        })
        lines.append(f"Conversation {c.id} ({c.user}, model {c.model or '-'}), started {iso(c.started_at)}")
        for u in c.utterances:
            who = u.get_role_display()
            if u.tool_name:
                arguments = json.dumps(u.tool_arguments, sort_keys=True)
                text = f"{u.tool_name}({arguments}) -> {json.dumps(u.tool_result, sort_keys=True)}"
            else:
                text = u.text
            lines.append(f"[{iso(u.created_at)}] {who}: {text}")
        lines.append("")
    return data, "\n".join(lines) + "\n"


def build_bundle(snapshot: ExportSnapshot) -> bytes:
    files: list[tuple[str, bytes]] = []
    meta = metadata(snapshot)
    frames: list[tuple[str, bytes]] = []
    missing = []
    all_frames = {**snapshot.landmark_frames, **snapshot.key_frames}
    for frame_id, frame in sorted(all_frames.items(), key=lambda kv: (kv[1].timestamp_ms, kv[0])):
        content = read_frame(frame)
        if content is None:
            missing.append(frame_id)
        else:
            frames.append((f"frames/{frame_file_name(frame)}", content))
    if missing:
        meta["missing_frames"] = missing
    files.append(("metadata.json", _json_bytes(meta)))
    files.append(("summary.json", _json_bytes(summary(snapshot))))
    files.append(("findings.csv", findings_csv(snapshot)))
    files.append(("findings.json", _json_bytes({
        "document_status": snapshot.document_status,
        "disclaimer": meta["disclaimer"]["text"],
        "findings": [finding_event(f) for f in snapshot.findings],
    })))
    files.append(("report.txt", render_text(snapshot).encode("utf-8")))
    files.append(("report.pdf", build_pdf(snapshot)))
    if snapshot.conversations:
        data, text = transcript(snapshot)
        files.append(("transcript.json", _json_bytes(data)))
        files.append(("transcript.txt", text.encode("utf-8")))
    if snapshot.conversations_after_signing:
        # Said after the signature: kept with the record, outside the signed documents.
        data, text = transcript(snapshot, snapshot.conversations_after_signing,
                                "MedVision voice copilot transcript AFTER SIGN-OFF (an addendum; not part of the "
                                "signed report)")
        data["after_signing"] = True
        data["signed_at"] = iso(snapshot.session.signed_at)
        files.append(("addenda/transcript_after_signing.json", _json_bytes(data)))
        files.append(("addenda/transcript_after_signing.txt", text.encode("utf-8")))
    files.extend(frames)
    manifest = {
        "algorithm": "sha256",
        "files": {
            name: {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)} for name, content in files
        },
    }
    files.append(("manifest.json", _json_bytes(manifest)))

    out = io.BytesIO()
    stamp = snapshot.exported_at.utctimetuple()[:6]
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            # JPEGs are compressed already: deflating them again costs time for nothing.
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, content)
    return out.getvalue()
