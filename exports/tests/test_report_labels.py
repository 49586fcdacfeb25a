"""What the report outputs call things: whose next step it is, the procedure's date, and
labels and m:ss times instead of codes and milliseconds."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from analysis import services as analysis_services
from analysis.tests.factories import FindingFactory
from exports import selectors, services
from exports.pdf import build_pdf
from exports.report import next_step_by_ai, render_text

from .pdftext import pdf_text

pytestmark = pytest.mark.django_db


def page(user, session) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("exports:report", args=[session.pk])).content.decode()


def snapshot(session, user):
    return selectors.export_snapshot(session=session, actor=user)


def fhir_notes(user, session, finding) -> list[str]:
    bundle = Bundle.model_validate_json(services.fhir_export(actor=user, session=session).content)
    obs = next(e.resource for e in bundle.entry if e.resource.id == str(finding.pk))
    return [n.text for n in obs.note]


@pytest.fixture
def next_steps(session, clinician):
    """Four findings in the report: the model's next step untouched, the model's next step
    retyped by the clinician, a correction of another field only, a clinician's own finding."""
    untouched = FindingFactory(session=session, start_ms=1000, suggested_next_step="Resect and retrieve")
    retyped = FindingFactory(session=session, start_ms=2000, suggested_next_step="Biopsy")
    size_only = FindingFactory(session=session, start_ms=3000, suggested_next_step="Tattoo the site")
    analysis_services.finding_review(actor=clinician, finding=untouched, status="confirmed")
    analysis_services.finding_review(actor=clinician, finding=retyped,
                                     corrections={"suggested_next_step": "Refer for EMR"})
    analysis_services.finding_review(actor=clinician, finding=size_only, corrections={"size_mm": 9.0})
    own = analysis_services.finding_add_manual(actor=clinician, session=session, start_ms=4000, category="polyp",
                                               risk="low", label="Flat lesion", suggested_next_step="Repeat in 1 year")
    for f in (untouched, retyped, size_only):
        f.refresh_from_db()
    return untouched, retyped, size_only, own


def test_only_an_unedited_ai_next_step_is_the_ais(next_steps):
    untouched, retyped, size_only, own = next_steps
    assert [next_step_by_ai(f) for f in next_steps] == [True, False, True, False]


def test_the_page_and_the_text_report_attribute_next_steps(next_steps, session, clinician):
    body = page(clinician, session)
    assert "<em>Suggested next step (AI):</em> Resect and retrieve" in body
    assert "<em>Next step (clinician):</em> Refer for EMR" in body
    assert "<em>Suggested next step (AI):</em> Tattoo the site" in body
    assert "<em>Next step (clinician):</em> Repeat in 1 year" in body
    assert "Suggested next step (AI):</em> Refer for EMR" not in body
    text = render_text(snapshot(session, clinician))
    assert "Suggested next step (AI): Resect and retrieve" in text
    assert "Next step (clinician): Refer for EMR" in text and "Next step (clinician): Repeat in 1 year" in text
    assert "(AI): Refer for EMR" not in text and "(AI): Repeat in 1 year" not in text


def test_the_pdf_and_fhir_attribute_next_steps(next_steps, session, clinician):
    untouched, retyped, _, own = next_steps
    text = pdf_text(build_pdf(snapshot(session, clinician)))
    assert "Suggested next step (AI): Resect and retrieve" in text
    assert "Next step (clinician): Refer for EMR" in text and "(AI): Refer for EMR" not in text
    assert "Suggested next step (AI proposal): Resect and retrieve" in fhir_notes(clinician, session, untouched)
    assert "Next step (clinician): Refer for EMR" in fhir_notes(clinician, session, retyped)
    assert "Next step (clinician): Repeat in 1 year" in fhir_notes(clinician, session, own)


def test_a_recorded_session_dates_the_report_by_its_upload(session, clinician, media_root):
    from procedures.models import Video

    video = Video.objects.create(session=session, number=1, sha256="b" * 64, file="videos/1.mp4", state="done")
    uploaded = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    Video.objects.filter(pk=video.pk).update(created_at=uploaded)
    assert session.started_at is None
    body = page(clinician, session)
    assert "<dt>Recorded (uploaded)</dt><dd id=\"procedure-date\">2026-03-04" in body
    text = render_text(snapshot(session, clinician))
    assert "Recorded (uploaded): 2026-03-04T09:30:00Z" in text and "Started:" not in text
    archive = zipfile.ZipFile(io.BytesIO(services.bundle_export(actor=clinician, session=session).content))
    meta = json.loads(archive.read("metadata.json"))["session"]
    assert (meta["procedure_date"], meta["procedure_date_source"], meta["started_at"]) == (
        "2026-03-04T09:30:00Z", "recording_uploaded_at", None)
    assert "Recorded (uploaded) 2026-03-04T09:30:00Z" in pdf_text(build_pdf(snapshot(session, clinician)))


def test_a_started_session_dates_the_report_by_its_start(session, clinician):
    session.started_at = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    session.save()
    assert "Started:         2026-05-06T07:08:09Z" in render_text(snapshot(session, clinician))
    assert "<dt>Started</dt>" in page(clinician, session)


def test_a_session_with_no_date_at_all_says_so(session, clinician):
    assert "Started:         -" in render_text(snapshot(session, clinician))


def test_people_read_labels_and_m_ss_times_not_codes_and_ms(structured, clinician):
    body = page(clinician, structured.session)
    for raw in ("sigmoid_colon", "terminal_ileum", "cold_snare", "tubular_adenoma", "0 ms", "Time (ms)", "95000"):
        assert raw not in body, raw
    assert "Sigmoid colon" in body and "Recording 1 · 1:35" in body
    assert 'id="landmark-appendiceal_orifice"' in body  # (an HTML id, not shown)
    text = render_text(snapshot(structured.session, clinician))
    for raw in ("sigmoid_colon", "cold_snare", " ms", "95000"):
        assert raw not in text.replace(f"000095000ms_{structured.frames[0].pk}", ""), raw


def test_the_print_page_shows_the_structured_report_and_landmark_frames(structured, clinician):
    body = page(clinician, structured.session)
    assert 'id="structured-report" data-status="draft"' in body
    assert "Draft — not signed" in body and "Not for clinical use" in body
    assert '<dd data-field="withdrawal">7:00 (meets the 6 min target)</dd>' in body
    assert '<dd data-field="surveillance.chosen">Repeat colonoscopy in 3 years</dd>' in body
    assert '<dd class="pre" data-field="impression">Two small adenomas removed.\nOtherwise normal colon.</dd>' in body
    assert "<td>0-Is (sessile)</td>" in body and "<td>NICE 2 (adenoma)</td>" in body
    for frame in structured.frames:
        assert reverse("procedures:frame-image", args=[structured.session.pk, frame.pk]) in body


def test_the_print_page_escapes_report_text(structured, clinician):
    record = structured.record
    record.data = {**record.data, "impression": "<script>alert(1)</script>"}
    record.save()
    body = page(clinician, structured.session)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_a_session_without_a_structured_report_says_so_on_the_page(reviewed, clinician):
    body = page(clinician, reviewed.session)
    assert 'data-status="none"' in body and "No structured report." in body
