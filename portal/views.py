"""Portal pages for procedure sessions. Thin: authorize, call a selector/service, render."""

from __future__ import annotations

import os
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from analysis import selectors as analysis_selectors
from analysis.recordings import ACTIVE_STATES
from medvision.audit import log_access, log_access_many
from procedures import access, selectors, services
from procedures.models import PlaybackState
from reporting import selectors as report_selectors

from .forms import ProcedureSessionForm


@login_required
def session_list(request):
    sessions = list(selectors.session_list(user=request.user, status=request.GET.get("status") or None)[:200])
    log_access_many(actor=request.user, instances=sessions, what="session_list")
    return render(
        request,
        "procedures/session_list.html",
        {"sessions": sessions, "can_create": access.can_create_sessions(request.user)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def session_create(request):
    if not access.can_create_sessions(request.user):
        raise PermissionDenied("Only clinicians can create procedure sessions.")
    form = ProcedureSessionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        session = services.session_create(actor=request.user, **form.cleaned_data)
        messages.success(request, "Session created.")
        return redirect("procedures:detail", session_id=session.pk)
    return render(request, "procedures/session_form.html", {"form": form})


PLOT_WIDTH = 720
PLOT_LEFT, PLOT_RIGHT = 56, 20  # room for the row names on the left
RISKS = ("high", "medium", "low")
MARK_H, LANE_GAP, ROW_PAD = 10, 2, 8  # a mark's height; between stacked lanes; around a row
MIN_MARK_W = 4
TOP, AXIS_H = 6, 30  # above the first row; below the last: tick labels and the axis title


def _lanes(marks) -> int:
    """Assign each mark (sorted by x) the lowest lane where it does not overlap the one
    before it, so two findings close in time are both visible and clickable instead of
    one rectangle hiding the other. Returns how many lanes the row needs."""
    ends: list[float] = []
    for mark in sorted(marks, key=lambda m: m["x"]):
        for lane, end in enumerate(ends):
            if mark["x"] >= end + 1:
                ends[lane] = mark["x"] + mark["w"]
                mark["lane"] = lane
                break
        else:
            mark["lane"] = len(ends)
            ends.append(mark["x"] + mark["w"])
    return max(len(ends), 1)


def findings_plot(findings, *, span_ms: int | None = None, video=None) -> dict | None:
    """Positions for the findings-over-time plot (an inline SVG: a picture of where the
    findings and their risk sit in the procedure reads faster than a table).

    One plot per time axis: a recording's findings against that recording's duration
    (``span_ms``), never mixed with another recording's times. Marks of one risk that
    overlap in time are stacked in lanes; the row grows to fit them."""
    from analysis.engine.schemas import humanize
    from medvision.timefmt import format_duration

    findings = list(findings)
    if not findings:
        return None
    span = max(span_ms or 0, max(f.end_ms for f in findings), 1)
    inner = PLOT_WIDTH - PLOT_LEFT - PLOT_RIGHT
    marks = []
    for f in findings:
        x1 = PLOT_LEFT + inner * f.start_ms / span
        x2 = PLOT_LEFT + inner * f.end_ms / span
        when = format_duration(f.start_ms // 1000)
        if f.end_ms // 1000 != f.start_ms // 1000:
            when += f"–{format_duration(f.end_ms // 1000)}"
        what = f.label or humanize(f.category)
        where = humanize(f.location) if f.location else ""
        marks.append({"x": round(x1, 1), "w": round(max(x2 - x1, MIN_MARK_W), 1), "risk": f.risk,
                      "label": " · ".join(p for p in (what, where, f"{f.get_risk_display()} risk", when,
                                                      f.get_review_status_display()) if p),
                      "id": f.pk, "ms": f.start_ms, "video": str(f.video_id) if f.video_id else "",
                      "rejected": f.review_status == "rejected"})
    rows, y = [], TOP
    for risk in RISKS:
        own = [m for m in marks if m["risk"] == risk] or []
        lanes = _lanes(own)
        height = ROW_PAD * 2 + lanes * MARK_H + (lanes - 1) * LANE_GAP
        for m in own:
            m["y"] = y + ROW_PAD + m["lane"] * (MARK_H + LANE_GAP)
        rows.append({"risk": risk, "label": risk.capitalize(), "y": y, "h": height, "text_y": y + height / 2 + 4})
        y += height
    for m in marks:  # a risk outside the three rows (never expected): shown on the low row
        m.setdefault("y", rows[-1]["y"] + ROW_PAD)
        m.setdefault("lane", 0)
    ticks = [{"x": round(PLOT_LEFT + inner * i / 4, 1), "label": format_duration(span * i / 4 / 1000)}
             for i in range(5)]
    return {"width": PLOT_WIDTH, "height": y + AXIS_H, "marks": marks, "ticks": ticks, "span_ms": span,
            "rows": rows, "axis_y": y, "tick_y": y + 12, "title_y": y + 26, "mark_h": MARK_H,
            "video": str(video.pk) if video is not None else ""}


def _review_counts(findings) -> dict:
    """The clinician's review so far: confirmed / rejected / edited / undecided."""
    counts = {"confirmed": 0, "rejected": 0, "edited": 0, "proposed": 0}
    for f in findings:
        if f.review_status in counts:
            counts[f.review_status] += 1
    return counts


# How the session page names where its procedure date comes from (selectors.procedure_date).
PROCEDURE_DATE_SOURCES = {"started_at": "started", "recording_uploaded_at": "first recording uploaded", "none": ""}


def _recording_filter(value: str | None, videos) -> tuple[str, object]:
    """The page's recording filter: "" (all), "none" (findings of no recording: live or
    added without one), or a recording's number. Anything else is ignored."""
    if value == "none":
        return value, None
    for v in videos:
        if value == str(v.number):
            return value, v
    return "", None


@login_required
def session_detail(request, session_id):
    session = selectors.session_get(user=request.user, session_id=session_id)
    risk = request.GET.get("risk") or None
    status = request.GET.get("status") or None
    videos = list(session.videos.order_by("number"))
    recording, chosen = _recording_filter(request.GET.get("recording"), videos)
    all_findings = list(analysis_selectors.finding_list(session=session).select_related("video"))
    shown = analysis_selectors.finding_list(session=session, risk=risk, review_status=status).select_related("video")
    if recording == "none":
        shown = shown.filter(video__isnull=True)
    elif chosen is not None:
        shown = shown.filter(video=chosen)
    # Grouped by recording (in their order; findings of no recording last), in time order
    # within each: a time only means something next to the recording it refers to.
    order = {v.pk: v.number for v in videos}
    findings = sorted(shown, key=lambda f: (order.get(f.video_id, len(videos) + 1), f.start_ms, f.created_at))
    recordings = []
    for v in videos:
        own = [f for f in all_findings if f.video_id == v.pk]
        span = int(v.duration_s * 1000) if v.duration_s else None
        recordings.append({"video": v, "findings": len(own), "plot": findings_plot(own, span_ms=span, video=v),
                           "review": _review_counts(own)})
    unassigned = [f for f in all_findings if f.video_id is None]
    busy = next((v for v in videos if v.state in ACTIVE_STATES), None)
    procedure_date, source = selectors.procedure_date(session, videos)
    procedure_date_source = PROCEDURE_DATE_SOURCES[source]
    return render(
        request,
        "procedures/session_detail.html",
        {
            "session": session,
            "findings": findings,
            "filters": {"risk": risk or "", "status": status or "", "recording": recording},
            "undecided": sum(1 for f in all_findings if f.review_status == "proposed"),
            # What the structured report still needs (signing refuses until it is complete),
            # said before the clinician tries to sign rather than after.
            "report_missing": (report_selectors.report_view(session)["missing"]
                               if access.can_edit(request.user, session) else []),
            "review": _review_counts(all_findings),
            "procedure_date": procedure_date,
            "procedure_date_source": procedure_date_source,
            "live_in_flight": analysis_selectors.live_frames_in_flight(session=session).count(),
            # The plot of findings tied to no recording (a live session's); each recording
            # has its own in ``recordings``.
            "plot": findings_plot(unassigned),
            "recordings": recordings,
            "addenda": session.addenda.select_related("author"),
            "videos": videos,
            "latest_video": videos[-1] if videos else None,
            "busy_video": busy,
            "my_uploads": (analysis_selectors.uploads_not_yet_recordings(user=request.user, session=session)
                           if access.can_edit(request.user, session) else []),
            "max_upload_bytes": settings.VIDEO_MAX_UPLOAD_BYTES,
            "upload_chunk_bytes": min(settings.TUS_BROWSER_CHUNK_BYTES, settings.TUS_MAX_CHUNK_BYTES),
            "can_edit": access.can_edit(request.user, session),
            "read_only_reason": access.edit_refusal(request.user, session),
        },
    )


@login_required
def frame_image(request, session_id, frame_id):
    """A stored frame (JPEG evidence), for people who may see its session. Never cached by
    shared caches: it is clinical data."""
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    frame = analysis_selectors.frame_list(session=session).filter(pk=frame_id).exclude(image="").first()
    if frame is None:
        raise Http404("No such frame.")
    log_access(actor=request.user, instance=session, what="frame_image", frame=str(frame.pk))
    response = FileResponse(frame.image.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


RANGE_CHUNK = 1024 * 1024
CONTAINER_TYPES = {"mov": "video/mp4", "mp4": "video/mp4", "webm": "video/webm", "matroska": "video/webm"}


def _video_content_type(video) -> str:
    names = (video.container or "").split(",")
    for name in names:
        if name in CONTAINER_TYPES:
            return CONTAINER_TYPES[name]
    return "application/octet-stream"


def _ranged_file(path, start: int, end: int):
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = fh.read(min(RANGE_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


@login_required
def video_file(request, session_id, video_id):
    """The recording, for people who may see the session, with HTTP Range support so the
    page's player can seek to a finding (browsers need byte ranges to seek).

    When browsers cannot play the original and its playable copy is ready, the player gets
    the copy (same time base, so a finding's time seeks the same picture); ``?original=1``
    downloads the original itself, the evidence, whatever its format."""
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    video = session.videos.filter(pk=video_id).first()
    if video is None or not video.file:
        raise Http404("No such recording.")
    path, content_type, served = _served_file(video, original=request.GET.get("original") == "1")
    size = os.path.getsize(path)
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", "").strip())
    if not match or match.group(1) in ("", "0"):
        # A player fetches many ranges while seeking; the first (from byte 0, or the whole
        # file) is the read worth recording, not every one of them.
        log_access(actor=request.user, instance=session, what="video_file", video=str(video.pk), served=served)
    if match and (match.group(1) or match.group(2)):
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        else:  # "bytes=-N": the last N bytes
            start, end = max(size - int(match.group(2)), 0), size - 1
        if start > end or start >= size:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        response = StreamingHttpResponse(_ranged_file(path, start, end), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(open(path, "rb"), content_type=content_type)
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    if served == "original_download":
        # A neutral name: the recorder's or uploader's file name can carry patient details.
        response["Content-Disposition"] = f'attachment; filename="recording-{video.number}.{_extension(video)}"'
    return response


def _served_file(video, *, original: bool) -> tuple[str, str, str]:
    """(path, content type, what was served) for ``video_file``."""
    if original:
        return video.file.path, _video_content_type(video), "original_download"
    copy = video.playback_file
    if video.playback_state == PlaybackState.READY and copy and os.path.exists(copy.path):
        return copy.path, "video/mp4", "playback_copy"
    return video.file.path, _video_content_type(video), "original"


# First demuxer name of a recording's container -> the usual file extension.
CONTAINER_EXTENSIONS = {"mov": "mov", "matroska": "mkv", "avi": "avi", "mpegts": "ts", "mpeg": "mpg", "mxf": "mxf",
                        "asf": "wmv", "flv": "flv", "ogg": "ogv", "dv": "dv", "nut": "nut", "h264": "h264",
                        "hevc": "hevc", "m4v": "m4v", "mpegvideo": "m2v", "gif": "gif"}


def _extension(video) -> str:
    return CONTAINER_EXTENSIONS.get((video.container or "").split(",")[0], "bin")
