"""The printable report page and the portal bundle download."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from exports.models import Export, ExportKind

pytestmark = pytest.mark.django_db


def page(user, session):
    client = Client()
    client.force_login(user)
    return client.get(reverse("exports:report", args=[session.pk]))


def test_an_unsigned_report_shows_all_findings_marked_preliminary(reviewed, clinician):
    response = page(clinician, reviewed.session)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-document-status="preliminary"' in body and "PRELIMINARY" in body
    for finding in (reviewed.confirmed, reviewed.edited, reviewed.rejected, reviewed.proposed):
        assert f'id="finding-{finding.pk}"' in body
    assert "Not signed." in body and "Not for clinical use" in body
    assert "Health AI Developer Foundations" in body and "DEMO MODEL: random weights" in body
    assert "Prep adequate; Boston 8." in body  # clinician notes
    assert reverse("procedures:frame-image", args=[reviewed.session.pk, reviewed.frames[0].pk]) in body
    assert response["Cache-Control"] == "private, no-store"


def test_a_signed_report_shows_only_the_report_and_who_signed(signed, clinician, qa_user):
    body = page(qa_user, signed.session).content.decode()
    assert 'data-document-status="final"' in body
    assert f'id="finding-{signed.confirmed.pk}"' in body and f'id="finding-{signed.edited.pk}"' in body
    assert f'id="finding-{signed.rejected.pk}"' not in body and f'id="finding-{signed.proposed.pk}"' not in body
    assert "Signed by <strong>dr.owner</strong>" in body
    export = Export.objects.get()
    assert (export.kind, export.is_final, export.created_by) == (ExportKind.REPORT, True, qa_user)


def test_model_text_is_escaped(reviewed, clinician):
    reviewed.confirmed.label = "<script>alert(1)</script>"
    reviewed.confirmed.save()
    body = page(clinician, reviewed.session).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_opening_the_report_is_audited(reviewed, clinician):
    page(clinician, reviewed.session)
    entry = LogEntry.objects.get_for_object(reviewed.session).filter(action=LogEntry.Action.ACCESS).get()
    assert entry.actor == clinician and entry.additional_data["what"] == "export:report"


def test_nobody_else_gets_the_report_or_the_bundle(reviewed, other_clinician, connector):
    for user in (other_clinician, connector):
        assert page(user, reviewed.session).status_code == 404
        client = Client()
        client.force_login(user)
        assert client.get(reverse("exports:bundle", args=[reviewed.session.pk])).status_code == 404
    assert not Export.objects.exists()


def test_the_portal_bundle_download(reviewed, clinician):
    client = Client()
    client.force_login(clinician)
    response = client.get(reverse("exports:bundle", args=[reviewed.session.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "-preliminary-" in response["Content-Disposition"]
    assert Export.objects.get().kind == ExportKind.BUNDLE
