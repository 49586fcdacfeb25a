"""The one JSON shape of a finding and a frame, shared by the API, WebSocket events and
exports (so a device, a page and an EHR all see the same fields)."""

from __future__ import annotations

from .models import Finding, Frame


def provenance_of(obj) -> dict:
    return {
        "backend": obj.backend,
        "model_id": obj.model_id,
        "model_revision": obj.model_revision,
        "prompt_version": obj.prompt_version,
        "generation_params": obj.generation_params,
        "latency_ms": obj.latency_ms,
        "is_demo": obj.is_demo,
    }


def finding_event(finding: Finding) -> dict:
    return {
        "id": str(finding.pk),
        "session": str(finding.session_id),
        "frame": str(finding.frame_id) if finding.frame_id else None,
        # The recording the times refer to: its id and its number in the session
        # ("Recording 2"); both null for a live session's findings.
        "video": str(finding.video_id) if finding.video_id else None,
        "recording": finding.video.number if finding.video_id else None,
        "origin": finding.origin,
        "start_ms": finding.start_ms,
        "end_ms": finding.end_ms,
        "category": finding.category,
        "label": finding.label,
        "location": finding.location,
        "risk": finding.risk,
        "confidence": finding.confidence,
        "size_mm": finding.size_mm,
        "description": finding.description,
        "suggested_next_step": finding.suggested_next_step,
        "review_status": finding.review_status,
        "reviewed_by": finding.reviewed_by.get_username() if finding.reviewed_by_id else None,
        "reviewed_at": finding.reviewed_at.isoformat() if finding.reviewed_at else None,
        "clinician_note": finding.clinician_note,
        "is_demo": finding.is_demo,
        "provenance": provenance_of(finding),
    }


def frame_event(frame: Frame) -> dict:
    return {
        "id": str(frame.pk),
        "session": str(frame.session_id),
        "source": frame.source,
        "timestamp_ms": frame.timestamp_ms,
        "analysis_state": frame.analysis_state,
        "analysis_error": frame.analysis_error,
        "is_demo": frame.is_demo,
        "latency_ms": frame.latency_ms,
    }
