"""API of the structured report and the timeline marks: shapes, errors, access, audit."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from medvision.notices import AI_DISCLAIMER
from procedures.models import SessionStatus, Video
from reporting.models import TimelineMark
from reporting.tests.factories import complete_data

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def report_url(session):
    return reverse("api-procedure-report", args=[session.pk])


def marks_url(session):
    return reverse("api-procedure-marks", args=[session.pk])


def test_get_returns_the_report_with_what_is_computed_and_is_audited(session, clinician):
    response = client_for(clinician).get(report_url(session))
    assert response.status_code == 200
    body = response.json()
    assert body["procedure_type"] == "colonoscopy" and body["disclaimer"] == AI_DISCLAIMER
    assert body["data"]["asa_class"] is None
    computed = body["computed"]
    assert computed["bbps_total"] is None and computed["withdrawal_s"] is None
    assert "ASA class" in computed["missing_for_sign"]
    assert computed["surveillance_suggestion"]["rule"] == "Record the extent reached first"
    assert LogEntry.objects.filter(action=LogEntry.Action.ACCESS, object_pk=str(session.pk),
                                   additional_data__what="api:structured_report").exists()


def test_put_stores_the_report_and_answers_the_totals(session, clinician):
    data = {k: v for k, v in complete_data("colonoscopy").items() if k != "surveillance"}
    response = client_for(clinician).put(report_url(session), data, format="json")
    assert response.status_code == 200, response.content
    computed = response.json()["computed"]
    assert computed["bbps_total"] == 8
    assert computed["surveillance_suggestion"]["months"] == 120
    assert "Withdrawal time (mark 'Cecum reached' and 'Scope out' on the timeline)" in computed["missing_for_sign"]


def test_put_refuses_bad_fields_with_a_message_each(session, clinician):
    response = client_for(clinician).put(report_url(session), {"asa_class": "VII", "bbps_left": 9, "colour": 1},
                                         format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"asa_class", "bbps_left", "colour"}


def test_a_field_of_another_procedure_type_conflicts_with_the_session(session, clinician):
    response = client_for(clinician).put(report_url(session), {"prague_c_cm": 2}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "report_conflict" and "prague_c_cm" in error["fields"]


def test_others_get_404_and_a_signed_session_403(session, clinician, other_clinician, qa_user):
    assert client_for(other_clinician).get(report_url(session)).status_code == 404
    assert client_for(None).get(report_url(session)).status_code == 401
    assert client_for(qa_user).get(report_url(session)).status_code == 200
    assert client_for(qa_user).put(report_url(session), {"asa_class": "I"}, format="json").status_code == 403
    session.status, session.signed_by, session.signed_at = SessionStatus.SIGNED, clinician, timezone.now()
    session.save()
    refused = client_for(clinician).put(report_url(session), {"asa_class": "I"}, format="json")
    assert refused.status_code == 403 and "signed" in refused.json()["error"]["message"]
    assert client_for(clinician).post(marks_url(session), {"kind": "scope_out", "time_ms": 1},
                                      format="json").status_code == 403


def test_marks_are_set_moved_listed_and_deleted(session, clinician):
    client = client_for(clinician)
    created = client.post(marks_url(session), {"kind": "cecum_reached", "time_ms": 60_000}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["label"] == "Cecum reached" and created.json()["video"] is None
    again = client.post(marks_url(session), {"kind": "cecum_reached", "time_ms": 61_000}, format="json")
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    client.post(marks_url(session), {"kind": "scope_out", "time_ms": 481_000}, format="json")
    listed = client.get(marks_url(session)).json()
    assert [m["kind"] for m in listed["results"]] == ["cecum_reached", "scope_out"]
    assert listed["withdrawal_s"] == 420.0
    mark_url = reverse("api-procedure-mark", args=[session.pk, created.json()["id"]])
    moved = client.patch(mark_url, {"time_ms": 71_000}, format="json")
    assert moved.status_code == 200 and moved.json()["time_display"] == "1:11"
    assert client.delete(mark_url).status_code == 204
    assert list(TimelineMark.objects.values_list("kind", flat=True)) == ["scope_out"]


def test_a_mark_on_another_procedures_recording_conflicts(session, clinician):
    from procedures.tests.factories import ProcedureSessionFactory

    other = Video.objects.create(session=ProcedureSessionFactory(clinician=clinician), sha256="b" * 64,
                                 file="videos/x.mp4", duration_s=60)
    response = client_for(clinician).post(marks_url(session), {"kind": "scope_out", "time_ms": 1000,
                                                               "video": str(other.pk)}, format="json")
    assert response.status_code == 409 and "video" in response.json()["error"]["fields"]
    bad = client_for(clinician).post(marks_url(session), {"kind": "lunch", "time_ms": -1}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"kind", "time_ms"}


def test_a_mark_on_a_procedure_without_marks_is_a_conflict_not_a_bad_request(clinician):
    from procedures.tests.factories import ProcedureSessionFactory

    upper_gi = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    response = client_for(clinician).post(marks_url(upper_gi), {"kind": "scope_out", "time_ms": 1000}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_allowed"
    assert "colonoscopies" in response.json()["error"]["message"]
    assert not TimelineMark.objects.filter(session=upper_gi).exists()


def test_a_surveillance_choice_on_an_upper_gi_report_is_a_conflict(clinician):
    from procedures.tests.factories import ProcedureSessionFactory

    upper_gi = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    response = client_for(clinician).put(report_url(upper_gi), {"surveillance": {"chosen_months": 36}}, format="json")
    assert response.status_code in (400, 409)  # not a field of this type: refused either way, never stored
    response = client_for(clinician).get(report_url(upper_gi))
    assert "surveillance" not in response.json()["data"]
