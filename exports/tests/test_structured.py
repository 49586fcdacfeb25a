"""The structured report's one rendered form: sections of labelled rows, and its JSON."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from exports import selectors, services
from exports.structured import DRAFT_LABEL, NO_REPORT, SIGNED_LABEL, interval_text, structured_json
from procedures.tests.factories import ProcedureSessionFactory
from reporting.models import StructuredReport, TimelineMark

from .conftest import sign

pytestmark = pytest.mark.django_db


def view_of(session, user):
    return selectors.export_snapshot(session=session, actor=user).structured


def rows_of(view) -> dict[str, str]:
    return {row.key: row.value for section in view.sections for row in section.rows}


def section(view, key):
    return next(s for s in view.sections if s.key == key)


def test_a_colonoscopy_report_becomes_labelled_rows_in_order(structured, clinician):
    view = view_of(structured.session, clinician)
    assert [s.key for s in view.sections] == [
        "patient", "extent", "bbps", "withdrawal", "polyps", "complications", "conclusion", "surveillance"]
    rows = rows_of(view)
    assert rows["indication"] == "Surveillance; Adenoma 3 years ago"
    assert rows["asa_class"] == "ASA II: mild systemic disease"
    assert rows["sedation"] == "Moderate sedation; Midazolam 2 mg"
    assert rows["extent"] == "Terminal ileum" and rows["cecum_reached"] == "Yes"
    assert rows["bbps_right"] == "2: minor residue, mucosa well seen"
    assert rows["bbps_total"] == "8 of 9, adequate (every segment scored 2 or more)"
    assert rows["withdrawal"] == "7:00 (meets the 6 min target)"
    assert rows["complications"] == "None"
    assert rows["impression"] == "Two small adenomas removed.\nOtherwise normal colon."
    assert rows["landmark.appendiceal_orifice"] == "Marked at Recording 1 · 1:35, key frame below"


def test_the_polyp_table_shows_labels_not_codes(structured, clinician):
    table = section(view_of(structured.session, clinician), "polyps").table
    assert table.headers == ("#", "Size", "Paris", "NICE", "Location", "Resection", "Retrieved", "Jar", "Histology")
    assert table.rows[0] == ("1", "6 mm", "0-Is (sessile)", "NICE 2 (adenoma)", "Sigmoid colon", "Cold snare", "Yes",
                             "J1", "Tubular adenoma")
    assert table.rows[1][3] == "" and table.rows[1][6] == "No" and table.rows[1][8] == "Pending pathology"
    cells = " ".join(" ".join(r) for r in table.rows)
    assert "sigmoid_colon" not in cells and "cold_snare" not in cells


def test_the_surveillance_rows_say_what_was_chosen_and_that_it_was_changed(structured, clinician):
    rows = rows_of(view_of(structured.session, clinician))
    assert rows["surveillance.chosen"] == "Repeat colonoscopy in 3 years"
    assert rows["surveillance.suggested"] == ("Repeat colonoscopy in 7 years; "
                                              "1-2 tubular adenomas < 10 mm: repeat in 7-10 years")
    assert rows["surveillance.changed"] == "Changed from the suggestion by the clinician"
    assert rows["surveillance.confirmed"] == "Yes" and rows["surveillance.note"] == "Family history"


@pytest.mark.parametrize(("months", "text"), [
    (0, "No surveillance colonoscopy"), (12, "Repeat colonoscopy in 1 year"), (36, "Repeat colonoscopy in 3 years"),
    (6, "Repeat colonoscopy in 6 months"), (None, ""),
])
def test_an_interval_reads_in_years_or_months(months, text):
    assert interval_text(months) == text


def test_an_unsigned_report_is_labelled_a_draft_and_a_signed_one_signed(structured, clinician):
    assert view_of(structured.session, clinician).status_label == DRAFT_LABEL == "Draft — not signed"
    signed = sign(structured.session, clinician)
    assert view_of(signed, clinician).status_label == SIGNED_LABEL


def test_a_session_without_a_report_says_so(session, clinician):
    view = view_of(session, clinician)
    assert not view.exists and view.status_label == NO_REPORT and view.sections == []
    assert structured_json(view) == {"exists": False, "status": "none", "status_label": NO_REPORT,
                                     "authoritative": False, "procedure_type": "colonoscopy"}


def test_empty_fields_leave_no_rows(session, clinician):
    StructuredReport.objects.create(session=session, data={"asa_class": "I"})
    view = view_of(session, clinician)
    rows = rows_of(view)
    assert rows["asa_class"].startswith("ASA I") and "indication" not in rows and "bbps_total" not in rows
    # The withdrawal time says what is missing instead of a blank.
    assert rows["withdrawal"] == "Not available: Mark 'Cecum reached' and 'Scope out' on the timeline."
    assert section(view, "polyps").table.rows == ()


def test_a_short_withdrawal_is_below_the_target(session, clinician):
    StructuredReport.objects.create(session=session, data={})
    for kind, ms in (("cecum_reached", 10_000), ("scope_out", 250_000)):
        TimelineMark.objects.create(session=session, kind=kind, time_ms=ms, set_by=clinician)
    assert rows_of(view_of(session, clinician))["withdrawal"] == "4:00 (below the 6 min target)"


def test_upper_gi_fields_are_labelled(clinician):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    StructuredReport.objects.create(session=session, data={
        "extent": "duodenum_d2", "barrett": True, "prague_c_cm": 2, "prague_m_cm": 5, "la_grade": "B",
        "ulcers": [{"location": "duodenal_bulb", "forrest": "IIa", "size_mm": 8}],
        "biopsies": [{"site": "lower_esophagus", "purpose": "Barrett surveillance", "jar": "B1"}],
    })
    view = view_of(session, clinician)
    rows = rows_of(view)
    assert rows["extent"] == "Duodenum (D2)" and rows["barrett"] == "Yes" and rows["la_grade"] == "LA grade B"
    assert rows["prague"] == "C2 M5 (circumferential 2 cm, maximum 5 cm)"
    assert section(view, "ulcers").table.rows == (("1", "Duodenal bulb", "Forrest IIa (non-bleeding visible vessel)",
                                                   "8 mm"),)
    assert section(view, "biopsies").table.rows == (("1", "Lower esophagus", "Barrett surveillance", "B1"),)
    assert "surveillance" not in [s.key for s in view.sections]


def test_bronchoscopy_fields_are_labelled(clinician):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type="bronchoscopy")
    StructuredReport.objects.create(session=session, data={
        "segments_examined": ["trachea", "right_main_bronchus"],
        "segment_findings": [{"segment": "right_main_bronchus", "text": "Mucosal oedema"}],
        "samples": [{"kind": "bal", "site": "right_middle_lobe_bronchus", "jar": "S1"}],
    })
    view = view_of(session, clinician)
    assert rows_of(view)["segments_examined"] == "Trachea, Right main bronchus"
    assert section(view, "segment_findings").table.rows == (("1", "Right main bronchus", "Mucosal oedema"),)
    assert section(view, "samples").table.rows[0][:4] == ("1", "Bronchoalveolar lavage (BAL)",
                                                          "Right middle lobe bronchus", "S1")


def test_the_json_form_keeps_codes_and_adds_labels_and_computed_values(structured, clinician):
    data = structured_json(view_of(structured.session, clinician))
    assert data["status"] == "draft" and data["authoritative"] is False
    assert data["data"]["polyps"][0]["location"] == "sigmoid_colon"  # codes stay codes
    assert data["labels"]["polyps"][0]["location"] == "Sigmoid colon"
    assert data["labels"]["asa_class"] == "ASA II: mild systemic disease"
    assert data["labels"]["complications"] == ["None"]
    assert (data["bbps_total"], data["bbps_adequate"], data["cecum_reached"]) == (8, True, True)
    assert (data["withdrawal_s"], data["withdrawal_display"], data["withdrawal_meets_target"]) == (420.0, "7:00", True)
    assert data["surveillance"]["chosen_months"] == 36
    assert data["surveillance"]["chosen_display"] == "Repeat colonoscopy in 3 years"
    assert data["surveillance"]["changed_by_clinician"] is True
    json.dumps(data)  # serialisable as is


def test_the_bundle_carries_the_structured_report_marks_and_landmark_frames(structured, clinician):
    archive = zipfile.ZipFile(io.BytesIO(services.bundle_export(actor=clinician, session=structured.session).content))
    meta = json.loads(archive.read("metadata.json"))
    summary = json.loads(archive.read("summary.json"))
    for doc in (meta, summary):
        assert doc["structured_report"]["bbps_total"] == 8
        assert doc["structured_report"]["surveillance"]["chosen_months"] == 36
    marks = {m["kind"]: m for m in meta["marks"]}
    assert marks["scope_out"] == {"kind": "scope_out", "label": "Scope out", "time_ms": 520_000,
                                  "time_display": "8:40", "recording": 1, "video": str(structured.video.pk),
                                  "frame": None, "frame_file": None}
    landmark = marks["appendiceal_orifice"]
    assert landmark["frame_file"] == f"frames/000095000ms_{structured.frames[0].pk}.jpg"
    assert landmark["frame_file"] in archive.namelist()
    assert "report.pdf" in archive.namelist() and archive.read("report.pdf").startswith(b"%PDF-")
    manifest = json.loads(archive.read("manifest.json"))
    assert "report.pdf" in manifest["files"]
    text = archive.read("report.txt").decode()
    assert "Structured report (Draft — not signed)" in text
    assert "Withdrawal time (cecum reached to scope out): 7:00 (meets the 6 min target)" in text
    assert "Surveillance interval: Repeat colonoscopy in 3 years" in text
    flat = " ".join(text.split())
    assert ("1. Size: 6 mm; Paris: 0-Is (sessile); NICE: NICE 2 (adenoma); Location: Sigmoid colon; "
            "Resection: Cold snare; Retrieved: Yes; Jar: J1; Histology: Tubular adenoma") in flat
    assert f"Appendiceal orifice (Recording 1 · 1:35): frames/000095000ms_{structured.frames[0].pk}.jpg" in text


def test_stored_data_that_no_longer_parses_is_reported_not_hidden(session, clinician):
    StructuredReport.objects.filter(pk=StructuredReport.objects.create(session=session, data={}).pk).update(
        data={"asa_class": "VII"})
    view = view_of(session, clinician)
    assert view.exists and view.report is None and "could not be read" in view.error
    assert structured_json(view)["error"] == view.error
