"""The printable report as a PDF: a real PDF, the same content as the page, safe with any text."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.urls import reverse

from exports import selectors
from exports.models import Export, ExportKind
from exports.pdf import build_pdf
from reporting.models import StructuredReport

from .conftest import HOSTILE, sign
from .pdftext import image_count, pdf_text

pytestmark = pytest.mark.django_db


def download(user, session):
    client = Client()
    client.force_login(user)
    return client.get(reverse("exports:report-pdf", args=[session.pk]))


def pdf_of(session, user) -> bytes:
    return build_pdf(selectors.export_snapshot(session=session, actor=user))


def test_the_pdf_download_is_a_pdf_attachment_named_after_the_session(structured, clinician):
    response = download(clinician, structured.session)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="medvision-report-{structured.session.pk}.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    assert response.content.startswith(b"%PDF-") and response.content.rstrip().endswith(b"%%EOF")
    assert response["X-MedVision-Document-Status"] == "preliminary"


def test_the_pdf_holds_the_structured_report_and_the_disclaimer(structured, clinician):
    text = pdf_text(pdf_of(structured.session, clinician))
    assert "NOT FOR CLINICAL USE" in text and "Health AI Developer Foundations" in text
    assert "PRELIMINARY — not signed" in text and "Structured report (Draft — not signed)" in text
    for expected in ("ASA II: mild systemic disease", "Terminal ileum", "8 of 9, adequate",
                     "7:00 (meets the 6 min target)",
                     "0-Is (sessile)", "NICE 2 (adenoma)", "Sigmoid colon", "Cold snare", "Tubular adenoma",
                     "Repeat colonoscopy in 3 years", "Changed from the suggestion by the clinician",
                     "Two small adenomas removed.", "Recorded (uploaded)", "Landmark key frames",
                     "Appendiceal orifice (Recording 1 · 1:35)"):
        assert expected in text, expected
    assert "sigmoid_colon" not in text and "cold_snare" not in text


def test_the_pdf_embeds_the_landmark_key_frames(structured, clinician):
    assert image_count(pdf_of(structured.session, clinician)) == 2


def test_a_signed_pdf_is_final(structured, clinician):
    signed = sign(structured.session, clinician)
    text = pdf_text(pdf_of(signed, clinician))
    assert "FINAL — signed report" in text and "Structured report (Signed)" in text and "Signed by dr.owner" in text


def test_the_pdf_holds_the_findings_with_their_key_frames(reviewed, clinician):
    content = pdf_of(reviewed.session, clinician)
    text = pdf_text(content)
    assert "=cmd|' /C calc'!A0" in text  # shown as text, as the page shows it
    assert "Structured report (No structured report)" in text and "No structured report." in text
    assert "DEMO MODEL: random weights" in text
    assert image_count(content) == 3  # the three findings' key frames


def test_hostile_text_neither_breaks_the_pdf_nor_is_interpreted(structured, clinician):
    record = structured.record
    record.data = {**record.data, "impression": HOSTILE + "\n<font size=40>big</font> <br/> </para>",
                   "indication_text": "a < b & c > d"}
    record.save()
    session = structured.session
    session.notes = "Notes with <b>markup</b> & an unclosed <i tag"
    session.save()
    content = pdf_of(session, clinician)
    text = pdf_text(content)
    assert content.startswith(b"%PDF-")
    assert HOSTILE in text  # the literal characters, not markup
    assert "<font size=40>big</font> <br/> </para>" in text
    assert "Surveillance; a < b & c > d" in text
    assert "Notes with <b>markup</b> & an unclosed <i tag" in text
    assert b"Helvetica-Bold" in content  # (bold exists for headings, so the check below means something)
    assert "/F2 40 Tf" not in content.decode("latin-1")


def test_text_outside_the_font_does_not_break_the_pdf(session, clinician):
    StructuredReport.objects.create(session=session, data={"impression": "Zhōngwén 中文 😀 Ελληνικά"})
    assert pdf_of(session, clinician).startswith(b"%PDF-")


def test_the_pdf_is_audited_and_recorded_like_the_page(structured, clinician, other_clinician, qa_user):
    assert download(other_clinician, structured.session).status_code == 404
    assert not Export.objects.exists()
    assert download(qa_user, structured.session).status_code == 200
    export = Export.objects.get()
    assert (export.kind, export.created_by, export.is_final) == (ExportKind.REPORT, qa_user, False)
    entry = LogEntry.objects.get_for_object(structured.session).filter(action=LogEntry.Action.ACCESS).get()
    assert entry.actor == qa_user
    assert entry.additional_data["what"] == "export:report" and entry.additional_data["format"] == "pdf"


def test_the_print_page_links_the_pdf(structured, clinician):
    client = Client()
    client.force_login(clinician)
    body = client.get(reverse("exports:report", args=[structured.session.pk])).content.decode()
    assert f'href="{reverse("exports:report-pdf", args=[structured.session.pk])}"' in body
    assert "Download PDF" in body
