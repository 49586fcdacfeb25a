"""API contract of the findings endpoints: listing (filters, pages, disclaimer, audit) and
review (confirm, reject, correct), for every role."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analysis import services
from analysis.api import FindingSerializer
from analysis.models import ReviewStatus
from analysis.serializers import finding_event
from analysis.tests.factories import FindingFactory
from medvision.notices import AI_DISCLAIMER
from procedures import workflow

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def findings(session, clinician):
    made = {
        "proposed": FindingFactory(session=session, start_ms=5000, end_ms=5000, risk="high", category="polyp"),
        "confirmed": FindingFactory(session=session, start_ms=1000, end_ms=1000, risk="medium", category="polyp"),
        "rejected": FindingFactory(session=session, start_ms=3000, end_ms=3000, risk="low", category="bleeding"),
        "edited": FindingFactory(session=session, start_ms=4000, end_ms=4000, risk="high", category="ulcer"),
    }
    services.finding_review(actor=clinician, finding=made["confirmed"], status="confirmed")
    services.finding_review(actor=clinician, finding=made["rejected"], status="rejected")
    services.finding_review(actor=clinician, finding=made["edited"], corrections={"location": "rectum"})
    for f in made.values():
        f.refresh_from_db()
    return made


def sign(session, clinician, findings):
    from reporting.tests.factories import complete_report

    services.finding_review(actor=clinician, finding=findings["proposed"], status="rejected")
    complete_report(session, actor=clinician)  # signing needs a complete structured report
    return workflow.session_sign(actor=clinician, session=session)


def list_url(session):
    return reverse("api-procedure-findings", args=[session.pk])


def detail_url(finding):
    return reverse("api-finding-detail", args=[finding.pk])


# --- list -------------------------------------------------------------------------------


def test_the_owner_lists_every_finding_in_time_order_with_the_disclaimer(session, clinician, findings):
    body = client_for(clinician).get(list_url(session)).json()
    assert body["count"] == 4 and body["disclaimer"] == AI_DISCLAIMER
    assert [r["id"] for r in body["results"]] == [
        str(findings[k].pk) for k in ("confirmed", "rejected", "edited", "proposed")
    ]


def test_the_finding_json_is_the_websocket_event_shape(session, clinician, findings):
    row = client_for(clinician).get(list_url(session)).json()["results"][0]
    finding = findings["confirmed"]
    finding.refresh_from_db()
    assert row == finding_event(finding)
    # The schema documents exactly these fields.
    assert set(FindingSerializer().fields) == set(row)


@pytest.mark.parametrize(("query", "expected"), [
    ({"risk": "high"}, {"edited", "proposed"}),
    ({"status": "rejected"}, {"rejected"}),
    ({"category": "polyp"}, {"confirmed", "proposed"}),
    ({"category": "polyp", "status": "proposed"}, {"proposed"}),
])
def test_filters(session, clinician, findings, query, expected):
    body = client_for(clinician).get(list_url(session), query).json()
    assert {r["id"] for r in body["results"]} == {str(findings[k].pk) for k in expected}


def test_a_bad_filter_value_says_what_is_allowed(session, clinician, findings):
    response = client_for(clinician).get(list_url(session), {"risk": "extreme"})
    assert response.status_code == 400
    assert "risk" in response.json()["error"]["message"] and "valid choice" in response.json()["error"]["message"]


def test_pages(session, clinician, findings, monkeypatch):
    from analysis.api import DisclaimedPagination

    monkeypatch.setattr(DisclaimedPagination, "page_size", 3)  # read from PAGE_SIZE at import
    first = client_for(clinician).get(list_url(session)).json()
    assert first["count"] == 4 and len(first["results"]) == 3 and first["next"]
    second = client_for(clinician).get(first["next"]).json()
    assert len(second["results"]) == 1 and second["previous"] and second["disclaimer"]


def test_listing_is_audited(session, clinician, findings):
    client_for(clinician).get(list_url(session), {"risk": "high"})
    entry = LogEntry.objects.get_for_object(session).filter(action=LogEntry.Action.ACCESS).get()
    assert entry.actor == clinician
    assert entry.additional_data == {"what": "api:findings", "filters": {"risk": "high"}, "count": 2}


def test_roles_on_an_unsigned_session(session, findings, other_clinician, qa_user, connector):
    assert client_for(None).get(list_url(session)).status_code == 401
    assert client_for(other_clinician).get(list_url(session)).status_code == 404
    assert client_for(connector).get(list_url(session)).status_code == 404
    assert client_for(qa_user).get(list_url(session)).json()["count"] == 4
    for user, status in ((other_clinician, 404), (connector, 404), (qa_user, 200), (None, 401)):
        assert client_for(user).get(detail_url(findings["proposed"])).status_code == status


def test_a_connector_sees_only_the_signed_report(session, clinician, findings, connector, qa_user):
    sign(session, clinician, findings)
    body = client_for(connector).get(list_url(session)).json()
    assert {r["id"] for r in body["results"]} == {str(findings["confirmed"].pk), str(findings["edited"].pk)}
    assert client_for(connector).get(list_url(session), {"status": "rejected"}).json()["count"] == 0
    assert client_for(connector).get(detail_url(findings["rejected"])).status_code == 404
    assert client_for(connector).get(detail_url(findings["confirmed"])).status_code == 200
    assert client_for(qa_user).get(list_url(session)).json()["count"] == 4  # QA audits everything


# --- review -----------------------------------------------------------------------------


def test_the_owner_confirms_a_finding(session, clinician, findings):
    response = client_for(clinician).patch(detail_url(findings["proposed"]), {"status": "confirmed"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["review_status"] == "confirmed" and body["reviewed_by"] == "dr.owner" and body["reviewed_at"]
    assert body["disclaimer"] == AI_DISCLAIMER
    findings["proposed"].refresh_from_db()
    assert {k: v for k, v in body.items() if k != "disclaimer"} == finding_event(findings["proposed"])
    assert LogEntry.objects.get_for_object(findings["proposed"]).filter(
        action=LogEntry.Action.UPDATE).last().actor == clinician


def test_the_owner_rejects_with_a_note(session, clinician, findings):
    body = client_for(clinician).patch(detail_url(findings["proposed"]),
                                       {"status": "rejected", "note": "Air bubble."}, format="json").json()
    assert (body["review_status"], body["clinician_note"]) == ("rejected", "Air bubble.")


def test_corrections_make_it_edited_and_keep_the_ai_original(session, clinician, findings):
    finding = findings["proposed"]
    response = client_for(clinician).patch(
        detail_url(finding), {"location": "rectum", "size_mm": 4.5, "risk": "low", "label": "Small polyp"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["review_status"], body["location"], body["size_mm"], body["risk"]) == ("edited", "rectum", 4.5, "low")
    finding.refresh_from_db()
    assert finding.ai_original["location"] == "sigmoid_colon" and finding.ai_original["risk"] == "high"


def test_a_note_alone_leaves_the_status(session, clinician, findings):
    body = client_for(clinician).patch(detail_url(findings["proposed"]), {"note": "Recheck"}, format="json").json()
    assert (body["review_status"], body["clinician_note"]) == ("proposed", "Recheck")


@pytest.mark.parametrize(("payload", "field", "words"), [
    ({"category": "varices"}, "category", "not a category for colonoscopy; use one of: polyp"),
    ({"location": "trachea"}, "location", "not a location for colonoscopy"),
])
def test_a_term_of_another_procedure_type_is_a_conflict_with_the_finding(session, clinician, findings, payload,
                                                                        field, words):
    """Well-formed, but not in this finding's vocabulary: 409, with the allowed values."""
    response = client_for(clinician).patch(detail_url(findings["proposed"]), payload, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "not_in_vocabulary" and words in error["message"] and field in error["fields"]
    findings["proposed"].refresh_from_db()
    assert findings["proposed"].review_status == ReviewStatus.PROPOSED


@pytest.mark.parametrize(("payload", "field", "words"), [
    ({"status": "proposed"}, "status", "not a valid choice"),
    ({"status": "confirmed", "risk": "low"}, "status", "send status 'edited'"),
    ({"size_mm": -1}, "size_mm", "greater than or equal to 0"),
    ({}, None, "Nothing to change"),
    # A typo or a wrong JSON type is named, never ignored or coerced (medvision.api_contract).
    ({"stauts": "confirmed"}, "stauts", "Unknown field. This operation accepts: category, description"),
    ({"status": "confirmed", "reviewed_by": "someone"}, "reviewed_by", "Unknown field"),
    ({"size_mm": "4"}, "size_mm", "Must be a number"),
    ({"label": 5}, "label", "Must be a string"),
    ({"status": True}, "status", "Must be a string"),
    # Control characters never reach the report or FHIR (medvision.text_rules).
    ({"note": "Seen at 12 cm\u0013"}, "note", "Remove the control characters"),
    ({"description": "polyp\u001c at 20 cm"}, "description", "Remove the control characters"),
    ({"label": "two\nlines"}, "label", "one line of text"),
])
def test_invalid_reviews_say_what_to_send(session, clinician, findings, payload, field, words):
    response = client_for(clinician).patch(detail_url(findings["proposed"]), payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert words in error["message"], error
    if field:
        assert field in error["fields"]
    findings["proposed"].refresh_from_db()
    assert findings["proposed"].review_status == ReviewStatus.PROPOSED


def test_edited_without_corrections_is_a_conflict_unless_already_edited(session, clinician, findings):
    client = client_for(clinician)
    response = client.patch(detail_url(findings["proposed"]), {"status": "edited"}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "nothing_edited"
    assert "needs the corrected fields" in response.json()["error"]["message"]
    findings["proposed"].refresh_from_db()
    assert findings["proposed"].review_status == ReviewStatus.PROPOSED
    # An edited finding keeps its corrections: 'edited' with a note only is fine.
    client.patch(detail_url(findings["proposed"]), {"label": "Sessile polyp"}, format="json")
    again = client.patch(detail_url(findings["proposed"]), {"status": "edited", "note": "Checked."}, format="json")
    assert again.status_code == 200 and again.json()["review_status"] == "edited"


def test_multi_line_notes_keep_their_line_breaks_and_tabs(session, clinician, findings):
    note = "Seen twice.\n\tBiopsy taken.\r\nÄ ü 5 mm"
    response = client_for(clinician).patch(detail_url(findings["proposed"]), {"note": note}, format="json")
    assert response.status_code == 200 and response.json()["clinician_note"] == note


def test_categories_follow_the_session_procedure_type(clinician):
    from procedures.tests.factories import ProcedureSessionFactory

    bronch = ProcedureSessionFactory(clinician=clinician, procedure_type="bronchoscopy")
    finding = FindingFactory(session=bronch, category="mass", location="trachea")
    client = client_for(clinician)
    refused = client.patch(detail_url(finding), {"category": "polyp"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_in_vocabulary"
    response = client.patch(detail_url(finding), {"category": "secretions", "location": "left_main_bronchus"},
                            format="json")
    assert response.status_code == 200 and response.json()["category"] == "secretions"


def test_others_cannot_review(session, clinician, findings, other_clinician, qa_user, connector):
    url = detail_url(findings["proposed"])
    assert client_for(None).patch(url, {"status": "confirmed"}, format="json").status_code == 401
    assert client_for(other_clinician).patch(url, {"status": "confirmed"}, format="json").status_code == 404
    assert client_for(connector).patch(url, {"status": "confirmed"}, format="json").status_code == 404
    qa = client_for(qa_user).patch(url, {"status": "confirmed"}, format="json")
    assert qa.status_code == 403 and "Only the clinician who owns" in qa.json()["error"]["message"]
    findings["proposed"].refresh_from_db()
    assert findings["proposed"].review_status == ReviewStatus.PROPOSED


def test_a_signed_session_refuses_reviews_with_the_reason(session, clinician, findings, connector):
    sign(session, clinician, findings)
    for user in (clinician, connector):
        response = client_for(user).patch(detail_url(findings["confirmed"]), {"status": "rejected"}, format="json")
        assert response.status_code == 403
        assert "signed" in response.json()["error"]["message"]
    findings["confirmed"].refresh_from_db()
    assert findings["confirmed"].review_status == ReviewStatus.CONFIRMED
