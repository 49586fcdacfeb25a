"""Confirmed findings prefill report rows; nothing proposed or rejected enters the report."""

from __future__ import annotations

import pytest

from analysis.tests.factories import FindingFactory
from procedures.tests.factories import ProcedureSessionFactory
from reporting import services
from reporting.models import StructuredReport

pytestmark = pytest.mark.django_db


def _report(session) -> StructuredReport:
    return StructuredReport.objects.get(session=session)


def test_confirmed_polyps_become_polyp_rows_with_size_location_and_finding(session, clinician):
    confirmed = FindingFactory(session=session, review_status="confirmed", size_mm=6.5, location="sigmoid_colon")
    edited = FindingFactory(session=session, review_status="edited", size_mm=12, location="cecum", start_ms=9000,
                            end_ms=9000)
    FindingFactory(session=session, review_status="proposed")
    FindingFactory(session=session, review_status="rejected")
    FindingFactory(session=session, review_status="confirmed", category="diverticulum")
    assert services.report_prefill(actor=clinician, session=session) == 2
    rows = _report(session).data["polyps"]
    assert [(r["finding_id"], r["size_mm"], r["location"]) for r in rows] == [
        (str(confirmed.pk), 6.5, "sigmoid_colon"), (str(edited.pk), 12.0, "cecum")]
    assert all(r["id"] for r in rows) and _report(session).updated_by == clinician


def test_running_it_again_adds_nothing_and_keeps_the_clinicians_edits(session, clinician):
    FindingFactory(session=session, review_status="confirmed", size_mm=5)
    services.report_prefill(actor=clinician, session=session)
    report = _report(session)
    row = {**report.data["polyps"][0], "size_mm": 7}
    services.report_update(actor=clinician, session=session, data={"polyps": [row]})
    assert services.report_prefill(actor=clinician, session=session) == 0
    report.refresh_from_db()
    assert [r["size_mm"] for r in report.data["polyps"]] == [7]


def test_upper_gi_ulcers_and_bronchoscopy_findings_get_their_rows(clinician):
    upper = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    FindingFactory(session=upper, review_status="confirmed", category="ulcer", location="duodenal_bulb", size_mm=8)
    FindingFactory(session=upper, review_status="confirmed", category="polyp", location="gastric_body")
    assert services.report_prefill(actor=clinician, session=upper) == 1
    (ulcer,) = _report(upper).data["ulcers"]
    assert (ulcer["location"], ulcer["size_mm"], ulcer["forrest"]) == ("duodenal_bulb", 8.0, None)

    broncho = ProcedureSessionFactory(clinician=clinician, procedure_type="bronchoscopy")
    FindingFactory(session=broncho, review_status="confirmed", category="mass", location="trachea",
                   label="Endobronchial mass")
    assert services.report_prefill(actor=clinician, session=broncho) == 1
    (row,) = _report(broncho).data["segment_findings"]
    assert (row["segment"], row["text"]) == ("trachea", "Endobronchial mass")


def test_a_location_outside_the_report_vocabulary_is_left_for_the_clinician(session, clinician):
    FindingFactory(session=session, review_status="confirmed", location="not-a-segment")
    services.report_prefill(actor=clinician, session=session)
    assert _report(session).data["polyps"][0]["location"] is None


def test_prefill_is_refused_on_a_signed_session(session, clinician):
    from procedures.access import SessionReadOnly
    from procedures.models import SessionStatus

    FindingFactory(session=session, review_status="confirmed")
    session.status, session.signed_by = SessionStatus.SIGNED, clinician
    session.signed_at = session.created_at
    session.save()
    with pytest.raises(SessionReadOnly):
        services.report_prefill(actor=clinician, session=session)
