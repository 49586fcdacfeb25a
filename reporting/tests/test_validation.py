"""What signing needs from the structured report, named by label, and the sign-off refusal."""

from __future__ import annotations

import pytest

from procedures import workflow
from procedures.models import SessionStatus
from procedures.tests.factories import ProcedureSessionFactory
from reporting.models import StructuredReport, TimelineMark
from reporting.tests.factories import complete_data, complete_marks, complete_report
from reporting.validation import missing_for_sign

pytestmark = pytest.mark.django_db


def _missing(session, data, marks=()):
    return missing_for_sign(session, StructuredReport(session=session, data=data), marks)


@pytest.mark.parametrize("procedure_type", ["colonoscopy", "upper_gi", "bronchoscopy", "other"])
def test_a_complete_report_misses_nothing(clinician, procedure_type):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type=procedure_type)
    report = complete_report(session, actor=clinician)
    assert missing_for_sign(session, report, TimelineMark.objects.filter(session=session)) == []


def test_an_empty_colonoscopy_lists_the_fields_by_label(session):
    assert missing_for_sign(session, None, []) == [
        "Indication", "ASA class", "Sedation", "Complications", "Impression", "Extent reached",
        "Bowel preparation (BBPS) right colon", "Bowel preparation (BBPS) transverse colon",
        "Bowel preparation (BBPS) left colon", "Surveillance interval (confirm or change the suggestion)",
    ]


def test_an_explicit_none_counts_as_complications_recorded(session, clinician):
    data = complete_data("colonoscopy")
    assert "Complications" not in _missing(session, data, complete_marks(session, actor=clinician))
    assert "Complications" in _missing(session, {**data, "complications": []})


def test_reaching_the_cecum_needs_the_withdrawal_marks_and_landmark_key_frames(session, clinician):
    data = complete_data("colonoscopy")
    missing = _missing(session, data, [])
    assert "Withdrawal time (mark 'Cecum reached' and 'Scope out' on the timeline)" in missing
    assert "Appendiceal orifice (mark it on the timeline)" in missing
    assert "Ileocecal valve (mark it on the timeline)" in missing
    marks = complete_marks(session, actor=clinician)
    valve = next(m for m in marks if m.kind == "ileocecal_valve")
    valve.frame = None
    out = next(m for m in marks if m.kind == "scope_out")
    out.time_ms = 1000  # before cecum reached
    missing = _missing(session, data, marks)
    assert "Withdrawal time ('Scope out' must come after 'Cecum reached')" in missing
    assert any(item.startswith("Ileocecal valve (no key frame") for item in missing)
    assert not any(item.startswith("Appendiceal orifice") for item in missing)


def test_an_incomplete_colonoscopy_needs_where_and_why_but_no_withdrawal(session):
    data = {**complete_data("colonoscopy"), "extent": "incomplete"}
    missing = _missing(session, data, [])
    assert "Where the examination stopped" in missing and "Why the examination stopped" in missing
    assert not any(item.startswith(("Withdrawal", "Appendiceal", "Ileocecal")) for item in missing)


def test_each_polyp_needs_size_and_location(session, clinician):
    data = {**complete_data("colonoscopy"), "polyps": [{"size_mm": 4, "location": "rectum"}, {"paris": "0-Is"}]}
    missing = _missing(session, data, complete_marks(session, actor=clinician))
    assert "Polyp 2 size (mm)" in missing and "Polyp 2 location" in missing
    assert not any(item.startswith("Polyp 1") for item in missing)


def test_a_confirmation_against_another_suggestion_must_be_repeated(session, clinician):
    data = complete_data("colonoscopy")  # confirmed at 10 years (normal)
    data["polyps"] = [{"size_mm": 12, "location": "rectum", "histology": "tubular_adenoma"}]  # now 3 years
    missing = _missing(session, data, complete_marks(session, actor=clinician))
    assert missing == ["Surveillance interval (the suggestion changed since it was confirmed: confirm it again)"]


def test_upper_gi_needs_prague_for_barrett_and_forrest_per_ulcer(clinician):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    data = {**complete_data("upper_gi"), "barrett": True, "prague_c_cm": 2,
            "ulcers": [{"location": "duodenal_bulb"}], "biopsies": [{"purpose": "H. pylori"}]}
    assert _missing(session, data) == ["Prague M (cm)", "Ulcer 1 forrest class", "Biopsy 1 site"]


def test_bronchoscopy_needs_a_segment_and_each_sample_kind_and_site(clinician):
    session = ProcedureSessionFactory(clinician=clinician, procedure_type="bronchoscopy")
    data = {**complete_data("bronchoscopy"), "segments_examined": [], "samples": [{"kind": "bal"}]}
    assert _missing(session, data) == ["Segments examined", "Sample 1 site"]


def test_a_row_from_a_finding_no_longer_confirmed_blocks_signing(session, clinician):
    from analysis.tests.factories import FindingFactory

    finding = FindingFactory(session=session, review_status="rejected")
    data = {**complete_data("colonoscopy"),
            "polyps": [{"finding_id": str(finding.pk), "size_mm": 4, "location": "rectum",
                        "histology": "hyperplastic"}]}  # still 10 years
    marks = complete_marks(session, actor=clinician)
    assert _missing(session, data, marks) == [
        "Polyp 1 (its finding is no longer confirmed: remove the row or confirm the finding)"]
    finding.review_status = "confirmed"
    finding.save()
    assert _missing(session, data, marks) == []


def test_signing_is_refused_with_what_is_missing(session, clinician):
    StructuredReport.objects.create(session=session, data={**complete_data("colonoscopy"), "asa_class": None,
                                                           "bbps_left": None})
    complete_marks(session, actor=clinician)
    with pytest.raises(workflow.NotAllowed) as refused:
        workflow.session_sign(actor=clinician, session=session)
    assert str(refused.value) == ("Structured report: fill in ASA class, Bowel preparation (BBPS) left colon.")
    session.refresh_from_db()
    assert session.status != SessionStatus.SIGNED


def test_a_complete_report_lets_the_session_be_signed(session, clinician):
    complete_report(session, actor=clinician)
    assert workflow.session_sign(actor=clinician, session=session).status == SessionStatus.SIGNED
