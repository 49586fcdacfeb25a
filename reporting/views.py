"""Portal pages of the structured report: the form per procedure type, "Fill from
confirmed findings", and the surveillance interval's confirmation. Thin: authorize
(``procedures.access``), parse the form (``reporting.forms``), call a service, render.

The form works without a script (scalar fields, and rows added or removed with submit
buttons that save and show the form again); ``static/js/report_form.js`` adds and removes
rows in place and keeps the BBPS total current.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from medvision.timefmt import format_duration, format_ms
from procedures import access
from procedures import selectors as session_selectors
from procedures.workflow import NotAllowed

from . import forms, vocabulary
from . import selectors as report_selectors
from . import services as report_services
from .schema import ReportDataError, empty, parse
from .surveillance import interval_display
from .withdrawal import withdrawal_from_marks

# What the clinician may choose as the interval (months); the suggestion is always offered too.
SURVEILLANCE_CHOICES = (0, 6, 12, 36, 60, 84, 120)


def _stored_data(session, report=None) -> dict:
    report = report if report is not None else report_selectors.report_for_session(session)
    return dict(report.data) if report is not None and report.data else empty(session.procedure_type)


def _typed(session, data: dict):
    try:
        return parse(session.procedure_type, data)
    except ReportDataError:
        return None


def _context(request, session, data: dict, errors: dict[str, str]) -> dict:
    ptype = session.procedure_type
    report = report_selectors.report_for_session(session)
    stored = _stored_data(session, report)
    # Computed values (totals, suggestion) from the data shown when it is valid, else from
    # what is stored: a refused value must not make the page's arithmetic fail.
    typed = _typed(session, data) or _typed(session, stored) or parse(ptype, {})
    marks = list(report_selectors.marks_for_session(session))
    # The saved report as every page and export sees it (suggestion, staleness, what signing
    # needs): computed once, in the selector, by the same rules as the sign-off.
    saved = report_selectors.report_view(session, report=report, marks=marks)
    by_kind = {mark.kind: mark for mark in marks}
    withdrawal = withdrawal_from_marks(marks)
    field_errors = {k: m for k, m in errors.items() if k != "report"}
    context = {
        "session": session,
        "sections": forms.bind(ptype, data, field_errors),
        "errors": errors,
        "error_labels": list(dict.fromkeys(forms.error_label(ptype, key) for key in field_errors)),
        "report_error": errors.get("report", ""),
        "can_edit": access.can_edit(request.user, session),
        "read_only_reason": access.edit_refusal(request.user, session),
        "missing": saved["missing"],
        "is_colonoscopy": ptype == "colonoscopy",
        "marks": [{"kind": code, "label": text, "mark": by_kind.get(code),
                   "time": format_ms(by_kind[code].time_ms) if code in by_kind else ""}
                  for code, text in vocabulary.MARK_KINDS],
        "withdrawal": withdrawal,
        "withdrawal_display": format_duration(withdrawal.seconds),
        "withdrawal_target": format_duration(vocabulary.WITHDRAWAL_TARGET_S),
        "bbps_total": getattr(typed, "bbps_total", None),
        "bbps_adequate": getattr(typed, "bbps_adequate", None),
    }
    if ptype == "colonoscopy":
        # From the saved report: what surveillance_confirm stores the choice against.
        suggestion = saved["suggestion"]
        chosen = (stored.get("surveillance") or {})
        options = sorted({*SURVEILLANCE_CHOICES, *([suggestion.months] if suggestion.months is not None else [])})
        selected = chosen.get("chosen_months") if chosen.get("confirmed") else suggestion.months
        context["surveillance"] = {
            "suggestion": suggestion,
            "stored": chosen,
            "chosen_display": interval_display(chosen.get("chosen_months")) if chosen.get("confirmed") else "",
            # The findings changed the suggested interval after the clinician confirmed (signing
            # asks for a new confirmation then: the same rule as reporting.validation).
            "outdated": saved["surveillance"]["stale"],
            "options": [{"months": m, "label": interval_display(m), "selected": m == selected} for m in options],
            # No suggestion and no choice yet: nothing is preselected (never "no surveillance" by default).
            "has_selection": selected is not None,
        }
        if session.is_signed:
            context["pathology"] = _pathology_context(request, session, report)
    return context


def _pathology_context(request, session, report) -> dict:
    """The "Pathology results" section of a signed colonoscopy: the results entered so far
    and the suggestion with them, for everyone who reads the report; the form for its owner."""
    from .pathology import RESULT_HISTOLOGY

    view = report_selectors.pathology_view(session, report=report)
    return {**view, "can_record": access.is_owner(request.user, session),
            "histology_options": RESULT_HISTOLOGY}


@login_required
@require_http_methods(["GET", "POST"])
def report_edit(request, session_id):
    session = session_selectors.session_get(user=request.user, session_id=session_id,
                                            audit_as="structured_report" if request.method == "GET" else None)
    ptype = session.procedure_type
    if request.method == "GET":
        return render(request, "reporting/report_form.html", _context(request, session, _stored_data(session), {}))

    access.ensure_editable(request.user, session)  # 403 with the reason (signed, not the owner)
    data, errors = forms.parse_post(ptype, request.POST, _stored_data(session))
    if errors:
        # Not even a number somewhere: say what else the schema refuses too, all at once.
        try:
            parse(ptype, data)
        except ReportDataError as exc:
            errors = {**exc.errors, **errors}
    else:
        try:
            report = report_services.report_update(actor=request.user, session=session, data=data)
            data = dict(report.data)
        except ReportDataError as exc:
            errors = exc.errors
    if errors:
        shown = forms.with_blank_row(ptype, data, request.POST.get("add_row", ""))
        return render(request, "reporting/report_form.html", _context(request, session, shown, errors), status=400)
    if request.POST.get("add_row") or request.POST.get("remove_row"):
        # The no-script way to add or remove a row: saved, and the form shown again with it.
        messages.success(request, "Report saved.")
        shown = forms.with_blank_row(ptype, data, request.POST.get("add_row", ""))
        return render(request, "reporting/report_form.html", _context(request, session, shown, {}))
    messages.success(request, "Report saved.")
    return redirect("reporting:edit", session_id=session.pk)


@login_required
@require_POST
def report_prefill(request, session_id):
    session = session_selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    access.ensure_editable(request.user, session)
    added = report_services.report_prefill(actor=request.user, session=session)
    if added:
        messages.success(request, f"Added {added} row{'s' if added != 1 else ''} from confirmed findings.")
    else:
        messages.info(request, "No confirmed finding is missing from the report.")
    return redirect("reporting:edit", session_id=session.pk)


@login_required
@require_POST
def surveillance_confirm(request, session_id):
    session = session_selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    access.ensure_editable(request.user, session)
    target = reverse("reporting:edit", kwargs={"session_id": session.pk}) + "#surveillance"
    try:
        months = int(request.POST.get("chosen_months", ""))
    except ValueError:
        messages.error(request, "Choose a surveillance interval.")
        return redirect(target)
    try:
        report_services.surveillance_confirm(actor=request.user, session=session, chosen_months=months,
                                             note=request.POST.get("note", "").strip())
    except ReportDataError as exc:
        messages.error(request, "Surveillance: " + "; ".join(exc.errors.values()))
        return redirect(target)
    except NotAllowed as exc:
        messages.error(request, str(exc))
        return redirect(target)
    messages.success(request, f"Surveillance interval confirmed: {interval_display(months)}.")
    return redirect(target)


@login_required
@require_POST
def pathology_record(request, session_id):
    """A polyp's pathology result on a signed colonoscopy (an addendum says what it changes)."""
    session = session_selectors.session_get(user=request.user, session_id=session_id, audit_as=None)
    target = reverse("reporting:edit", kwargs={"session_id": session.pk}) + "#pathology"
    try:
        # Non-owners get SessionReadOnly: a 403 with the reason, as every other write here.
        result = report_services.pathology_record(
            actor=request.user, session=session, polyp_id=request.POST.get("polyp_id", ""),
            histology=request.POST.get("histology", ""), note=request.POST.get("note", ""))
    except ReportDataError as exc:
        messages.error(request, "Pathology result not recorded: " + "; ".join(exc.errors.values()))
        return redirect(target)
    except NotAllowed as exc:
        messages.error(request, str(exc))
        return redirect(target)
    from .pathology import polyp_title

    signed = report_selectors.report_with_pathology(session, results=[])
    messages.success(request, f"Pathology recorded: {polyp_title(signed, result.polyp_id)}, "
                              f"{vocabulary.label(vocabulary.POLYP_HISTOLOGY, result.histology)}. "
                              "An addendum records it.")
    return redirect(target)
