"""QA admin for structured reports and timeline marks: readable (labels, m:ss), read-only
for everybody (superusers included), and every page read audited."""

import pytest
from auditlog.models import LogEntry
from django.contrib import admin
from django.test import Client, RequestFactory

from reporting.models import StructuredReport, TimelineMark

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(session, clinician):
    return StructuredReport.objects.create(session=session, updated_by=clinician, data={
        "asa_class": "II", "sedation_level": "deep", "extent": "cecum", "complications": ["none"],
        "bbps_right": 2, "bbps_transverse": 2, "bbps_left": 3,
        "polyps": [{"id": "p1", "size_mm": 6, "location": "ascending_colon", "paris": "0-Is", "resection": "cold_snare",
                    "retrieved": True, "jar": "1", "histology": "pending"}],
        "surveillance": {"suggested_months": 84, "suggested_rule": "1-2 tubular adenomas < 10 mm: repeat in 7-10 years",
                         "chosen_months": 84, "confirmed": True, "note": ""},
    })


def as_user(user):
    client = Client()
    client.force_login(user)
    return client


def test_qa_reads_a_report_with_labels_not_codes(report, qa_user, session):
    response = as_user(qa_user).get(f"/admin/reporting/structuredreport/{report.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("ASA II: mild systemic disease", "Deep sedation", "Ascending colon", "0-Is (sessile)", "Cold snare",
                 "Bowel preparation (BBPS) left colon", "7 / 9", "Repeat colonoscopy in 7 years"):
        assert text in html, text
    assert "ascending_colon" not in html.replace('name="', "")  # the code itself is never shown
    entry = LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(session.pk)).latest("timestamp")
    assert entry.actor == qa_user and entry.additional_data["what"] == "admin:structuredreport"


def test_the_report_list_is_audited_per_session(report, qa_user, session):
    response = as_user(qa_user).get("/admin/reporting/structuredreport/")
    assert response.status_code == 200
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(session.pk), actor=qa_user,
                                   additional_data__what="admin:structuredreport_list").exists()


def test_marks_show_their_time_as_mss_and_the_recording(session, clinician, qa_user):
    mark = TimelineMark.objects.create(session=session, kind="cecum_reached", time_ms=125_400, set_by=clinician)
    html = as_user(qa_user).get("/admin/reporting/timelinemark/").content.decode()
    assert "2:05" in html and "Cecum reached" in html and "Live stream" in html
    response = as_user(qa_user).get(f"/admin/reporting/timelinemark/{mark.pk}/change/")
    assert response.status_code == 200
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(session.pk),
                                   additional_data__what="admin:timelinemark").exists()


@pytest.mark.parametrize("model", [StructuredReport, TimelineMark])
def test_nobody_changes_reports_or_marks_in_admin(model, admin_user):
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_a_superuser_cannot_post_changes(report, admin_user):
    response = as_user(admin_user).post(f"/admin/reporting/structuredreport/{report.pk}/change/", {"data": "{}"})
    assert response.status_code == 403
    report.refresh_from_db()
    assert report.data["asa_class"] == "II"
