"""POST /api/v1/procedures/{id}/sign/: the owner signs once every proposal is decided."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from analysis import services as analysis_services
from analysis.tests.factories import FindingFactory
from medvision.notices import AI_DISCLAIMER
from procedures.models import SessionStatus
from reporting.tests.factories import complete_report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _complete_report(session, clinician):
    # Signing needs a complete structured report (reporting.validation).
    complete_report(session, actor=clinician)


def client_for(user):
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def url(session):
    return reverse("api-procedure-sign", args=[session.pk])


def test_undecided_proposals_block_signing_with_the_reason(session, clinician):
    FindingFactory(session=session)
    FindingFactory(session=session)
    response = client_for(clinician).post(url(session))
    assert response.status_code == 409  # well formed, but the session is not ready: a conflict
    assert response.json()["error"] == {
        "code": "cannot_sign",
        "message": "2 proposed finding(s) still need a decision (confirm, edit or reject) before signing.",
    }
    session.refresh_from_db()
    assert session.status != SessionStatus.SIGNED


def test_the_owner_signs(session, clinician, connector):
    finding = FindingFactory(session=session)
    analysis_services.finding_review(actor=clinician, finding=finding, status="confirmed")
    response = client_for(clinician).post(url(session))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["signed_by"]) == ("signed", "dr.owner") and body["signed_at"]
    assert body["disclaimer"] == AI_DISCLAIMER
    for user in (clinician, connector):  # a connector sees the signed session, and may not change it
        again = client_for(user).post(url(session))
        assert again.status_code == 403 and "signed" in again.json()["error"]["message"]


def test_nobody_else_signs(session, other_clinician, qa_user, connector):
    assert client_for(None).post(url(session)).status_code == 401
    assert client_for(other_clinician).post(url(session)).status_code == 404
    assert client_for(connector).post(url(session)).status_code == 404
    qa = client_for(qa_user).post(url(session))
    assert qa.status_code == 403 and "Only the clinician who owns" in qa.json()["error"]["message"]
    session.refresh_from_db()
    assert session.status != SessionStatus.SIGNED
