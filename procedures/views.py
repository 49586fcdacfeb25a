"""Portal pages for procedure sessions. Thin: authorize, call a selector/service, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from analysis import selectors as analysis_selectors

from . import access, selectors, services
from .forms import ProcedureSessionForm


@login_required
def session_list(request):
    sessions = selectors.session_list(user=request.user, status=request.GET.get("status") or None)
    return render(
        request,
        "procedures/session_list.html",
        {"sessions": sessions[:200], "can_create": access.can_create_sessions(request.user)},
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


PLOT_WIDTH, PLOT_HEIGHT = 720, 120
RISK_Y = {"high": 25, "medium": 60, "low": 95}


def findings_plot(findings) -> dict | None:
    """Positions for the findings-over-time plot (an inline SVG: a picture of where the
    findings and their risk sit in the procedure reads faster than a table)."""
    findings = list(findings)
    if not findings:
        return None
    span = max(max(f.end_ms for f in findings), 1)
    marks = []
    for f in findings:
        x1 = 40 + (PLOT_WIDTH - 60) * f.start_ms / span
        x2 = 40 + (PLOT_WIDTH - 60) * f.end_ms / span
        marks.append({"x": round(x1, 1), "w": round(max(x2 - x1, 3), 1), "y": RISK_Y.get(f.risk, 95), "risk": f.risk,
                      "label": f"{f.label or f.category} · {f.location} · {f.start_ms / 1000:.1f} s",
                      "id": f.pk, "rejected": f.review_status == "rejected"})
    ticks = [{"x": round(40 + (PLOT_WIDTH - 60) * i / 4, 1), "label": f"{span * i / 4 / 1000:.0f} s"} for i in range(5)]
    return {"width": PLOT_WIDTH, "height": PLOT_HEIGHT, "marks": marks, "ticks": ticks}


@login_required
def session_detail(request, session_id):
    session = selectors.session_get(user=request.user, session_id=session_id)
    risk = request.GET.get("risk") or None
    status = request.GET.get("status") or None
    all_findings = analysis_selectors.finding_list(session=session)
    findings = analysis_selectors.finding_list(session=session, risk=risk, review_status=status)
    videos = list(session.videos.all())
    return render(
        request,
        "procedures/session_detail.html",
        {
            "session": session,
            "findings": findings,
            "filters": {"risk": risk or "", "status": status or ""},
            "undecided": sum(1 for f in all_findings if f.review_status == "proposed"),
            "plot": findings_plot(all_findings),
            "addenda": session.addenda.select_related("author"),
            "videos": videos,
            "latest_video": videos[-1] if videos else None,
            "max_upload_bytes": settings.VIDEO_MAX_UPLOAD_BYTES,
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
    response = FileResponse(frame.image.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
