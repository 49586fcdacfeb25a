"""Portal actions on a session: review findings, add one, sign, addenda.

Every action is a POST with a CSRF token, goes through the services (which enforce the
access rules and the sign-off lock) and answers JSON to scripts (``Accept:
application/json``) or redirects back to the page for plain forms.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from analysis import services as analysis_services
from analysis.models import Finding
from analysis.serializers import finding_event
from procedures import access, selectors, services, workflow

from .forms import AddendumForm, FindingForm, NoteForm

REVIEW_ACTIONS = {"confirm": "confirmed", "reject": "rejected"}


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _refuse(request, session, message: str, status: int = 403):
    if _wants_json(request):
        return JsonResponse({"error": {"code": "not_allowed", "message": message}}, status=status)
    if status == 403:
        raise PermissionDenied(message)
    messages.error(request, message)
    return redirect("procedures:detail", session_id=session.pk)


def _finding_of(session, finding_id) -> Finding:
    try:
        return Finding.objects.select_related("frame").get(pk=finding_id, session=session)
    except (Finding.DoesNotExist, ValueError):
        raise Http404("No such finding in this session.") from None


def _form_problem(form) -> str:
    """The form's first error, said as the field's rule says it (too long, control
    characters, missing text)."""
    for field, errors in form.errors.items():
        if field in form.fields:
            label = form.fields[field].label or field.replace("_", " ").capitalize()
            return f"{label}: {errors[0]}"
        return errors[0]
    return "Check what you entered."


@login_required
@require_POST
def finding_review(request, session_id, finding_id):
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    finding = _finding_of(session, finding_id)
    action = request.POST.get("action", "")
    note_form = NoteForm(request.POST)
    if action not in REVIEW_ACTIONS and action != "note":
        return _refuse(request, session, "Choose confirm, reject or note.", 400)
    if not note_form.is_valid():
        return _refuse(request, session, _form_problem(note_form), 400)
    try:
        finding = analysis_services.finding_review(
            actor=request.user, finding=finding, status=REVIEW_ACTIONS.get(action),
            note=note_form.cleaned_data["note"] if "note" in request.POST else None,
        )
    except access.SessionReadOnly as exc:
        return _refuse(request, session, str(exc))
    if _wants_json(request):
        return JsonResponse({"finding": finding_event(finding)})
    return redirect(f"{_detail_url(session)}#finding-{finding.pk}")


def _detail_url(session):
    from django.urls import reverse

    return reverse("procedures:detail", kwargs={"session_id": session.pk})


def _new_finding_initial(request, session) -> dict:
    """A new finding refers to the recording being watched (``?video=<id>&ms=<time>`` from
    the page's link), else the session's latest recording. An id of another session's
    recording is ignored here; posted, it is a form error."""
    videos = list(session.videos.order_by("number"))
    chosen = next((v for v in videos if str(v.pk) == request.GET.get("video", "")), None)
    initial = {"video": chosen or (videos[-1] if videos else None)}
    ms = request.GET.get("ms", "")
    if ms.isdigit():
        # The player's current time (the page's "Add a finding" passes it): start and end.
        initial["start_ms"] = initial["end_ms"] = int(ms)
    return initial


def _show_refusal(form, exc) -> None:
    """A service's refusal on the form: a field's message beside that field when the form has
    it (e.g. a start time after the end of the recording), else at the top."""
    for field, messages_ in getattr(exc, "message_dict", {}).items():
        if field in form.fields:
            form.add_error(field, messages_)
            return
    form.add_error(None, exc.messages[0] if hasattr(exc, "messages") else str(exc))


@login_required
@require_http_methods(["GET", "POST"])
def finding_edit(request, session_id, finding_id=None):
    """Correct a finding (it becomes "edited"; the model's proposal is kept) or add one."""
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    reason = access.edit_refusal(request.user, session)
    if reason:
        raise PermissionDenied(reason)
    finding = _finding_of(session, finding_id) if finding_id else None
    initial = {f: getattr(finding, f) for f in FindingForm.base_fields} if finding else _new_finding_initial(request, session)
    form = FindingForm(request.POST or None, initial=initial, procedure_type=session.procedure_type, session=session,
                       recording_fixed=bool(finding and finding.origin == "ai" and finding.video_id),
                       allow_no_recording=bool(finding and not finding.video_id))
    if request.method == "POST" and form.is_valid():
        values = {k: v for k, v in form.cleaned_data.items() if k not in ("start_ms", "end_ms", "video")}
        try:
            if finding:
                analysis_services.finding_review(actor=request.user, finding=finding, corrections=values)
                if "video" in form.fields and "video" in form.changed_data:
                    # Moved only when the clinician chose another recording in the form.
                    analysis_services.finding_set_recording(actor=request.user, finding=finding,
                                                            video=form.cleaned_data["video"])
            else:
                start_ms = form.cleaned_data["start_ms"] or 0
                video = form.cleaned_data.get("video")
                analysis_services.finding_add_manual(
                    actor=request.user, session=session, start_ms=start_ms, video=video,
                    end_ms=form.cleaned_data.get("end_ms") or start_ms, with_key_frame=True, **values)
        except (access.SessionReadOnly, DjangoValidationError) as exc:
            _show_refusal(form, exc)
        else:
            messages.success(request, "Finding saved." if finding else "Finding added.")
            return redirect("procedures:detail", session_id=session.pk)
    return render(request, "procedures/finding_form.html", {"session": session, "finding": finding, "form": form})


@login_required
@require_POST
def session_sign(request, session_id):
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    try:
        workflow.session_sign(actor=request.user, session=session)
    except access.SessionReadOnly as exc:
        return _refuse(request, session, str(exc))
    except workflow.NotAllowed as exc:
        return _refuse(request, session, str(exc), 400)
    messages.success(request, "Report signed. The session is now read-only; corrections are added as addenda.")
    return redirect("procedures:detail", session_id=session.pk)


@login_required
@require_POST
def session_notes(request, session_id):
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _refuse(request, session, _form_problem(form), 400)
    try:
        services.session_update(actor=request.user, session=session, notes=form.cleaned_data["note"])
    except access.SessionReadOnly as exc:
        return _refuse(request, session, str(exc))
    return redirect("procedures:detail", session_id=session.pk)


@login_required
@require_POST
def addendum_create(request, session_id):
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    form = AddendumForm(request.POST)
    if not form.is_valid():
        return _refuse(request, session, _form_problem(form), 400)
    try:
        workflow.addendum_create(actor=request.user, session=session, text=form.cleaned_data["text"])
    except workflow.NotAllowed as exc:
        return _refuse(request, session, str(exc), 400)
    except access.SessionReadOnly as exc:
        return _refuse(request, session, str(exc))
    messages.success(request, "Addendum added.")
    return redirect("procedures:detail", session_id=session.pk)


@login_required
def session_live(request, session_id):
    session = selectors.session_get(user=request.user, session_id=session_id, audit_as="live page")
    return render(request, "procedures/session_live.html", {
        "session": session,
        "can_send": access.edit_refusal(request.user, session) is None,
        "read_only_reason": access.edit_refusal(request.user, session),
    })
