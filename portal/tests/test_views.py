import pytest
from django.test import Client
from django.urls import reverse

from analysis.tests.factories import FindingFactory
from procedures.models import ProcedureSession

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_every_page_shows_the_not_for_clinical_use_banner(clinician, session):
    for url in (reverse("procedures:list"), reverse("procedures:create"), reverse("procedures:detail", args=[session.pk])):
        body = logged_in(clinician).get(url).content.decode()
        assert 'id="not-for-clinical-use"' in body and "Not for clinical use." in body
    assert "Not for clinical use." in Client().get(reverse("login")).content.decode()


def test_demo_findings_are_marked_demo(clinician, session):
    FindingFactory(session=session, is_demo=True)
    body = logged_in(clinician).get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert "DEMO" in body and "not a medical model" in body


def test_model_and_user_text_is_rendered_inert(clinician, session):
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    FindingFactory(session=session, label=payload[:120], location="<b>x</b>")
    session.notes = payload
    session.save()
    body = logged_in(clinician).get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert "<script>alert(2)</script>" not in body
    assert "<img src=x" not in body
    assert "<b>x</b>" not in body
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body


def test_create_form_rejects_phi_like_patient_reference(clinician):
    response = logged_in(clinician).post(
        reverse("procedures:create"),
        {"title": "Colonoscopy", "procedure_type": "colonoscopy", "mode": "live", "patient_ref": "John Smith 01/02/1960"},
    )
    assert response.status_code == 200
    assert "do not enter names" in response.content.decode()
    assert not ProcedureSession.objects.exists()


def test_create_requires_csrf_token(clinician):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    response = client.post(reverse("procedures:create"), {"title": "x", "procedure_type": "other", "mode": "live"})
    assert response.status_code == 403
    assert not ProcedureSession.objects.exists()


def test_malformed_session_id_is_not_found(clinician):
    assert logged_in(clinician).get("/procedures/not-a-uuid/").status_code == 404


def test_session_page_links_the_report_and_the_bundle(clinician, session, media_root):
    page = logged_in(clinician).get(reverse("procedures:detail", args=[session.pk])).content.decode()
    assert reverse("exports:report", args=[session.pk]) in page
    assert reverse("exports:bundle", args=[session.pk]) in page and "(preliminary)" in page
    bundle = logged_in(clinician).get(reverse("exports:bundle", args=[session.pk]))
    assert bundle.status_code == 200 and bundle["Content-Type"] == "application/zip"


def test_recording_is_served_with_byte_ranges_for_seeking(clinician, session, media_root):
    from django.core.files.base import ContentFile

    from procedures.models import Video

    data = bytes(range(256)) * 40
    video = Video(session=session, sha256="d" * 64, container="mov,mp4,m4a,3gp,3g2,mj2", state="done")
    video.file.save("v.bin", ContentFile(data), save=True)
    url = reverse("procedures:video-file", args=[session.pk, video.pk])
    client = logged_in(clinician)
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4" and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(part.streaming_content) == data[100:200]
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == data[-10:]
    assert client.get(url, HTTP_RANGE=f"bytes={len(data) + 5}-").status_code == 416
