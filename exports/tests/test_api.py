"""API contract of the export endpoints, for every role."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from exports.models import Export

from .conftest import api_client

pytestmark = pytest.mark.django_db

ENDPOINTS = ("api-procedure-export", "api-procedure-fhir")


@pytest.mark.parametrize("name", ENDPOINTS)
def test_roles_on_an_unsigned_session(name, reviewed, clinician, other_clinician, qa_user, connector):
    url = reverse(name, args=[reviewed.session.pk])
    expected = {None: 401, other_clinician: 404, connector: 404, qa_user: 200, clinician: 200}
    for user, status in expected.items():
        response = api_client(user).get(url)
        assert response.status_code == status, (name, user, response.content[:200])
        if status >= 400:
            assert set(response.json()["error"]) >= {"code", "message"}
    assert Export.objects.count() == 2 and not Export.objects.filter(is_final=True).exists()


@pytest.mark.parametrize("name", ENDPOINTS)
def test_a_connector_gets_the_final_document_of_a_signed_session(name, signed, connector, other_clinician):
    url = reverse(name, args=[signed.session.pk])
    response = api_client(connector).get(url)
    assert response.status_code == 200
    assert response["X-MedVision-Document-Status"] == "final"
    assert response["Cache-Control"] == "private, no-store"
    export = Export.objects.get()
    assert export.created_by == connector and export.is_final
    assert api_client(other_clinician).get(url).status_code == 404  # signed or not, not theirs


def test_the_zip_download(signed, connector):
    response = api_client(connector).get(reverse("api-procedure-export", args=[signed.session.pk]),
                                         HTTP_ACCEPT="application/zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="medvision-colonoscopy-')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert json.loads(archive.read("metadata.json"))["document_status"] == "final"
    assert response["X-MedVision-Export-Id"] == str(Export.objects.get().pk)


def test_the_fhir_download(signed, connector):
    response = api_client(connector).get(reverse("api-procedure-fhir", args=[signed.session.pk]),
                                         HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    bundle = Bundle.model_validate_json(response.content)
    assert bundle.entry[0].resource.status == "final"


def test_a_client_that_accepts_only_the_document_type_still_reads_errors(session, other_clinician):
    response = api_client(other_clinician).get(reverse("api-procedure-export", args=[session.pk]),
                                               HTTP_ACCEPT="application/zip")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"].startswith("Not found")


def test_api_downloads_are_attributed_and_audited(signed, connector):
    api_client(connector).get(reverse("api-procedure-export", args=[signed.session.pk]))
    export = Export.objects.get()
    assert LogEntry.objects.get_for_object(export).get(action=LogEntry.Action.CREATE).actor == connector
    access = LogEntry.objects.get_for_object(signed.session).filter(action=LogEntry.Action.ACCESS).get()
    assert access.actor == connector
    assert access.additional_data == {
        "what": "export:bundle", "export": str(export.pk), "document_status": "final", "sha256": export.sha256,
    }
