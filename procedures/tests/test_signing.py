"""Sign-off locks a session: no service, page, API call or admin form can change it."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from analysis import services as analysis_services
from analysis.tests.factories import FindingFactory
from procedures import access, services, workflow
from procedures.models import SessionStatus
from reporting.tests.factories import complete_report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _complete_report(session, clinician):
    # Signing needs a complete structured report (reporting.validation); these tests are
    # about the other rules.
    complete_report(session, actor=clinician)


@pytest.fixture
def signed_session(session, clinician):
    finding = FindingFactory(session=session)
    analysis_services.finding_review(actor=clinician, finding=finding, status="confirmed")
    return workflow.session_sign(actor=clinician, session=session)


def test_signing_needs_a_decision_on_every_proposed_finding(session, clinician):
    FindingFactory(session=session)
    with pytest.raises(workflow.NotAllowed, match="1 proposed finding"):
        workflow.session_sign(actor=clinician, session=session)
    session.refresh_from_db()
    assert session.status != SessionStatus.SIGNED


def test_only_the_owner_can_sign(session, other_clinician, qa_user):
    for user in (other_clinician, qa_user):
        with pytest.raises(access.SessionReadOnly):
            workflow.session_sign(actor=user, session=session)


def test_signing_records_who_and_when(signed_session, clinician):
    assert signed_session.status == SessionStatus.SIGNED
    assert signed_session.signed_by == clinician
    assert signed_session.signed_at is not None


def test_signed_session_rejects_service_changes(signed_session, clinician):
    with pytest.raises(access.SessionReadOnly, match="signed"):
        services.session_update(actor=clinician, session=signed_session, notes="late change")
    finding = signed_session.findings.get()
    with pytest.raises(access.SessionReadOnly):
        analysis_services.finding_review(actor=clinician, finding=finding, status="rejected")
    with pytest.raises(access.SessionReadOnly):
        analysis_services.finding_add_manual(
            actor=clinician, session=signed_session, start_ms=0, category="polyp", risk="low"
        )
    with pytest.raises(access.SessionReadOnly):
        workflow.session_sign(actor=clinician, session=signed_session)
    finding.refresh_from_db()
    assert finding.review_status == "confirmed"


def test_signed_session_rejects_api_changes(signed_session, clinician):
    client = APIClient()
    client.force_authenticate(clinician)
    response = client.patch(reverse("api-procedure-detail", args=[signed_session.pk]), {"notes": "late"})
    assert response.status_code == 403
    assert "signed" in response.json()["error"]["message"]
    signed_session.refresh_from_db()
    assert signed_session.notes == ""


def test_signed_session_is_read_only_in_admin_even_for_superusers(signed_session, admin_user):
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:procedures_proceduresession_change", args=[signed_session.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(url, {"title": "changed", "procedure_type": "other"})
    assert response.status_code == 403
    delete = client.post(reverse("admin:procedures_proceduresession_delete", args=[signed_session.pk]), {"post": "yes"})
    assert delete.status_code == 403
    signed_session.refresh_from_db()
    assert signed_session.title != "changed"


def test_qa_reviewer_changes_nothing_in_admin(session, qa_user):
    client = Client()
    client.force_login(qa_user)
    url = reverse("admin:procedures_proceduresession_change", args=[session.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"title": "QA edit", "procedure_type": "other"}).status_code == 403
    session.refresh_from_db()
    assert session.title != "QA edit"


def test_detail_page_says_why_it_is_read_only(signed_session, clinician):
    client = Client()
    client.force_login(clinician)
    body = client.get(reverse("procedures:detail", args=[signed_session.pk])).content.decode()
    assert "This session is signed and can no longer be changed" in body


# --- Live analyses still in flight at sign-off ------------------------------------------

def _live_frame(session, ts):
    from analysis.tests.fakes import jpeg_bytes

    return analysis_services.frame_create(session=session, source="live", timestamp_ms=ts,
                                          jpeg=jpeg_bytes(seed=ts), width=64, height=48)


def _polyp_result(frame):
    from analysis.tests.fakes import FakeAnalyzer

    stub = type("F", (), {"frame_id": str(frame.pk), "timestamp_ms": frame.timestamp_ms})()
    return FakeAnalyzer().analyze([stub], "colonoscopy")[0]


def test_signing_cancels_live_frames_still_waiting_for_the_model(session, clinician):
    from analysis import live
    from analysis.models import AnalysisState, Finding

    waiting, on_gpu = _live_frame(session, 1000), _live_frame(session, 1500)
    type(on_gpu).objects.filter(pk=on_gpu.pk).update(analysis_state=AnalysisState.ANALYSING)
    workflow.session_sign(actor=clinician, session=session)
    for frame in (waiting, on_gpu):
        frame.refresh_from_db()
        assert frame.analysis_state == AnalysisState.SKIPPED
        assert frame.analysis_error == live.LIVE_CANCELLED
    # The model's answer for the frame it was working on arrives after the signature: ignored.
    analysis_services.frame_record_result(frame_id=on_gpu.pk, result=_polyp_result(on_gpu))
    assert not Finding.objects.filter(session=session).exists()


def test_a_proposal_recorded_before_the_signature_must_still_be_decided(session, clinician):
    from analysis.models import AnalysisState

    frame = _live_frame(session, 1000)
    analysis_services.frame_record_result(frame_id=frame.pk, result=_polyp_result(frame))
    waiting = _live_frame(session, 1500)
    with pytest.raises(workflow.NotAllowed, match="1 proposed finding"):
        workflow.session_sign(actor=clinician, session=session)
    # A refused sign-off changes nothing: the waiting frame is still analysed as usual.
    waiting.refresh_from_db()
    assert waiting.analysis_state == AnalysisState.PENDING


def test_a_result_for_a_signed_session_adds_no_proposal(signed_session):
    # Even a frame that somehow escaped cancellation cannot add to a signed report.
    from analysis.models import AnalysisState

    frame = _live_frame(signed_session, 5000)
    type(frame).objects.filter(pk=frame.pk).update(analysis_state=AnalysisState.ANALYSING)
    _, created = analysis_services.frame_record_result(frame_id=frame.pk, result=_polyp_result(frame))
    assert created == []
    assert signed_session.findings.count() == 1


def test_detail_page_tells_the_clinician_about_frames_still_being_analysed(session, clinician):
    _live_frame(session, 1000)
    client = Client()
    client.force_login(clinician)
    body = client.get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert "1 live frame still being analysed" in body
    assert "Signing now cancels it." in body
