"""Reviewing in the portal: confirm, reject, edit, add, note, sign, addenda."""

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from analysis.models import Finding
from analysis.tests.factories import FindingFactory
from procedures.models import Addendum, SessionStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(clinician):
    client = Client()
    client.force_login(clinician)
    return client


def review_url(finding):
    return reverse("procedures:finding-review", args=[finding.session_id, finding.pk])


def test_confirm_and_reject_record_the_reviewer(owner, session, clinician):
    a, b = FindingFactory(session=session), FindingFactory(session=session, start_ms=5000, end_ms=5000)
    assert owner.post(review_url(a), {"action": "confirm"}).status_code == 302
    response = owner.post(review_url(b), {"action": "reject"}, HTTP_ACCEPT="application/json")
    assert response.json()["finding"]["review_status"] == "rejected"
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.review_status, a.reviewed_by) == ("confirmed", clinician)
    assert b.review_status == "rejected" and b.reviewed_at is not None


def test_editing_keeps_the_models_proposal(owner, session):
    finding = FindingFactory(session=session, location="sigmoid_colon", label="Polyp")
    response = owner.post(reverse("procedures:finding-edit", args=[session.pk, finding.pk]), {
        "category": "polyp", "location": "rectum", "risk": "high", "label": "Rectal polyp", "size_mm": "12",
        "description": "Pedunculated.", "suggested_next_step": "Resect.",
    })
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.review_status == "edited" and finding.location == "rectum" and finding.size_mm == 12
    assert finding.ai_original["location"] == "sigmoid_colon" and finding.ai_original["label"] == "Polyp"


def test_edit_form_offers_only_the_procedures_vocabulary(owner, session):
    finding = FindingFactory(session=session)
    response = owner.post(reverse("procedures:finding-edit", args=[session.pk, finding.pk]), {
        "category": "polyp", "location": "carina", "risk": "low"})  # a bronchoscopy location
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    finding.refresh_from_db()
    assert finding.location == "sigmoid_colon"


def test_adding_a_missed_finding(owner, session, clinician):
    response = owner.post(reverse("procedures:finding-new", args=[session.pk]), {
        "category": "diverticulum", "location": "sigmoid_colon", "risk": "low", "start_ms": "1:01"})
    assert response.status_code == 302
    finding = Finding.objects.get(session=session)
    assert finding.origin == "clinician" and finding.review_status == "confirmed" and finding.start_ms == 61000
    assert LogEntry.objects.get_for_object(finding).get(action=LogEntry.Action.CREATE).actor == clinician


def test_sign_needs_decisions_then_locks(owner, session):
    finding = FindingFactory(session=session)
    page = owner.get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert "1 proposed finding still needs a decision" in page
    response = owner.post(reverse("procedures:sign", args=[session.pk]), follow=True)
    assert "still need a decision" in response.content.decode()
    owner.post(review_url(finding), {"action": "confirm"})
    from reporting.tests.factories import complete_report

    complete_report(session, actor=session.clinician)  # signing needs a complete structured report
    owner.post(reverse("procedures:sign", args=[session.pk]))
    session.refresh_from_db()
    assert session.status == SessionStatus.SIGNED
    # After signing: no more decisions, edits or notes.
    assert owner.post(review_url(finding), {"action": "reject"}).status_code == 403
    assert owner.post(review_url(finding), {"action": "reject"}, HTTP_ACCEPT="application/json").status_code == 403
    assert owner.get(reverse("procedures:finding-edit", args=[session.pk, finding.pk])).status_code == 403
    assert owner.post(reverse("procedures:notes", args=[session.pk]), {"note": "late"}).status_code == 403
    finding.refresh_from_db()
    assert finding.review_status == "confirmed"


def test_addenda_only_after_signing_and_only_by_the_clinician(owner, session, clinician, qa_user):
    url = reverse("procedures:addendum", args=[session.pk])
    owner.post(url, {"text": "too early"})
    assert not Addendum.objects.exists()
    session.status, session.signed_by = SessionStatus.SIGNED, clinician
    from django.utils import timezone

    session.signed_at = timezone.now()
    session.save()
    assert owner.post(url, {"text": "Histology: tubular adenoma."}).status_code == 302
    addendum = Addendum.objects.get()
    assert addendum.author == clinician
    qa = Client()
    qa.force_login(qa_user)
    assert qa.post(url, {"text": "QA edit"}).status_code == 403
    page = owner.get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert "Histology: tubular adenoma." in page


def findings_table(response) -> str:
    page = response.content.decode()
    return page[page.index('id="findings-panel"'):]


def test_filters_by_risk_and_status(owner, session):
    FindingFactory(session=session, risk="high", label="High one")
    FindingFactory(session=session, risk="low", label="Low one", review_status="rejected")
    table = findings_table(owner.get(reverse("procedures:detail", args=[session.pk]), {"risk": "high"}))
    assert "High one" in table and "Low one" not in table
    table = findings_table(owner.get(reverse("procedures:detail", args=[session.pk]), {"status": "rejected"}))
    assert "Low one" in table and "High one" not in table


def test_plot_and_timeline_render_inert_markup(owner, session):
    FindingFactory(session=session, label="<svg onload=alert(1)>", risk="high", start_ms=1000, end_ms=4000)
    page = owner.get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert 'id="findings-plot"' in page
    assert "<svg onload" not in page and "&lt;svg onload=alert(1)&gt;" in page


def test_live_page_for_owner_and_watcher(owner, session, qa_user):
    page = owner.get(reverse("procedures:live", args=[session.pk])).content.decode()
    assert 'data-can-send="true"' in page and 'id="start-stream"' in page
    qa = Client()
    qa.force_login(qa_user)
    page = qa.get(reverse("procedures:live", args=[session.pk])).content.decode()
    assert 'data-can-send="false"' in page and 'id="start-stream"' not in page


@pytest.mark.parametrize(("url_name", "field", "value"), [
    ("procedures:notes", "note", "Prep adequate\u0013"),
    ("procedures:finding-edit", "description", "Pedunculated\u001c polyp"),
    ("procedures:finding-edit", "label", "Rectal\npolyp"),
])
def test_control_characters_are_refused_in_the_portal_with_the_reason(owner, session, url_name, field, value):
    finding = FindingFactory(session=session, label="Polyp")
    args = [session.pk] if url_name == "procedures:notes" else [session.pk, finding.pk]
    data = {"category": "polyp", "location": "rectum", "risk": "low", field: value}
    response = owner.post(reverse(url_name, args=args), data, follow=True)  # a note: back to the page, flashed
    assert response.status_code == 200
    assert "control characters" in response.content.decode()
    session.refresh_from_db()
    finding.refresh_from_db()
    assert session.notes == "" and finding.label == "Polyp" and finding.review_status == "proposed"


def test_a_session_title_with_a_control_character_is_refused_on_the_create_form(owner):
    from procedures.models import ProcedureSession

    response = owner.post(reverse("procedures:create"),
                          {"title": "Screening\u0013", "procedure_type": "colonoscopy", "mode": "live"})
    assert response.status_code == 200 and "control characters" in response.content.decode()
    assert not ProcedureSession.objects.exists()
