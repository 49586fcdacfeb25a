"""QA quality metrics: the page and its CSV export (staff only; every view is audited)."""

from __future__ import annotations

import csv
import datetime as dt

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from medvision import roles
from medvision.audit import log_access

from . import quality
from .quality_selectors import quality_clinician_choices, quality_session_list

# A week-by-week chart over more than a few years is unreadable, and the page loads every
# signed session of the range into memory: bound the range.
MAX_RANGE_DAYS = 5 * 366

STAFF_ONLY = ("Quality metrics compare clinicians with each other: only QA staff (QA reviewers and "
              "administrators) can see them.")


class QualityFilterForm(forms.Form):
    grouping = forms.ChoiceField(label="Group by", choices=quality.GROUPINGS, required=False)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    clinician = forms.ModelChoiceField(label="Clinician", queryset=None, required=False, to_field_name="username",
                                       empty_label="All clinicians")

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_from, self.default_to = quality.default_range(today)
        self.fields["clinician"].queryset = quality_clinician_choices()
        self.fields["clinician"].label_from_instance = lambda user: user.get_username()
        self.fields["date_from"].widget.attrs["placeholder"] = self.default_from.isoformat()
        self.fields["date_to"].widget.attrs["placeholder"] = self.default_to.isoformat()

    def clean(self):
        data = super().clean()
        data["grouping"] = data.get("grouping") or "month"
        data["date_from"] = data.get("date_from") or self.default_from
        data["date_to"] = data.get("date_to") or self.default_to
        if "date_from" in self.errors or "date_to" in self.errors:
            return data
        if data["date_from"] > data["date_to"]:
            raise forms.ValidationError("'From' must not be after 'To'.")
        if (data["date_to"] - data["date_from"]).days > MAX_RANGE_DAYS:
            raise forms.ValidationError("Choose a range of at most 5 years.")
        return data

    def audit_details(self) -> dict:
        data = self.cleaned_data
        return {"grouping": data["grouping"], "from": data["date_from"].isoformat(),
                "to": data["date_to"].isoformat(),
                "clinician": data["clinician"].get_username() if data["clinician"] else "all"}


def _staff_only(user) -> None:
    if not roles.sees_quality_metrics(user):
        raise PermissionDenied(STAFF_ONLY)


def _filter_form(request) -> QualityFilterForm:
    return QualityFilterForm(request.GET, today=timezone.localdate())


def _quality_report(form: QualityFilterForm) -> tuple[quality.QualityReport, int]:
    data = form.cleaned_data
    sessions = quality_session_list(date_from=data["date_from"], date_to=data["date_to"],
                                    clinician=data["clinician"])
    procedures = [quality.procedure_from_session(s) for s in sessions]
    report = quality.build_quality_report(procedures, date_from=data["date_from"], date_to=data["date_to"],
                                          grouping=data["grouping"])
    return report, len(procedures)


def _audit(request, form: QualityFilterForm, *, what: str, sessions: int) -> None:
    # The entry names whom the figures are about: the one clinician filtered on, else (all
    # clinicians) the reader's own account; the filters are in the details either way.
    subject = form.cleaned_data["clinician"] or request.user
    log_access(actor=request.user, instance=subject, what=what, sessions_counted=sessions, **form.audit_details())


@never_cache
@require_GET
@login_required
def quality_page(request):
    _staff_only(request.user)
    form = _filter_form(request)
    context = {"form": form, "report": None, "definitions": quality.DEFINITIONS, "target_text": quality.TARGET_TEXT}
    if not form.is_valid():
        return render(request, "reporting/quality.html", context, status=400)
    report, sessions = _quality_report(form)
    _audit(request, form, what="quality_metrics", sessions=sessions)
    return render(request, "reporting/quality.html", {
        **context,
        "report": report,
        "period_noun": quality.PERIOD_NOUNS[report.grouping],
        "chart_data": quality.chart_data(report),
        "charts": [(chart_id, title, unit) for chart_id, title, unit, _, _ in quality.CHARTS],
        "show_period_totals": len(report.clinicians) != 1,
        "query": request.GET.urlencode(),
    })


@never_cache
@require_GET
@login_required
def quality_csv(request):
    _staff_only(request.user)
    form = _filter_form(request)
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" if field != "__all__" else " ".join(errors)
                             for field, errors in form.errors.items())
        return HttpResponse(f"The filters could not be used: {problems}\n", status=400,
                            content_type="text/plain; charset=utf-8")
    report, sessions = _quality_report(form)
    _audit(request, form, what="quality_metrics_csv", sessions=sessions)
    data = form.cleaned_data
    name = f"quality-metrics_{data['date_from']:%Y-%m-%d}_{data['date_to']:%Y-%m-%d}_{data['grouping']}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    csv.writer(response).writerows(quality.csv_rows(report))
    return response
