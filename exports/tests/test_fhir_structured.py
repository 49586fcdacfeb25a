"""The structured report in the FHIR export: Observations with standard codes where one
exists, local codes otherwise, and the surveillance interval as a CarePlan."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from exports import fhir, services
from exports.fhir_structured import REPORT_FIELD_SYSTEM, REPORT_FIELDS, add_months
from procedures.tests.factories import ProcedureSessionFactory
from reporting.models import StructuredReport

from .conftest import sign

pytestmark = pytest.mark.django_db

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def export(user, session) -> Bundle:
    # Parsed back through the fhir.resources models: the bundle validates as a whole.
    return Bundle.model_validate_json(services.fhir_export(actor=user, session=session).content)


def resources(bundle: Bundle, kind: str) -> list:
    return [e.resource for e in bundle.entry if e.resource.get_resource_type() == kind]


def field_observations(bundle: Bundle) -> dict[str, object]:
    out = {}
    for obs in resources(bundle, "Observation"):
        for coding in obs.code.coding:
            if coding.system == REPORT_FIELD_SYSTEM:
                out[obs.identifier[0].value.split("/", 1)[1]] = obs
    return out


def codes(concept) -> set[tuple[str, str]]:
    return {(c.system, c.code) for c in concept.coding or []}


def component(obs, code: str):
    return next(c for c in obs.component if (REPORT_FIELD_SYSTEM, code) in codes(c.code))


def test_the_report_fields_become_observations_in_the_report(structured, clinician):
    bundle = export(clinician, structured.session)
    fields = field_observations(bundle)
    assert set(fields) == {"indication", "asa-class", "sedation", "complications", "extent", "bbps-right",
                           "bbps-transverse", "bbps-left", "bbps-total", "withdrawal-time", "polyp-p1", "polyp-p2"}
    (report,) = resources(bundle, "DiagnosticReport")
    full_urls = {e.fullUrl: e.resource for e in bundle.entry}
    results = {r.reference for r in report.result}
    for obs in fields.values():
        assert f"urn:uuid:{obs.id}" in results and f"urn:uuid:{obs.id}" in full_urls
        assert obs.status == "preliminary"
        assert codes(obs.category[0]) == {("http://terminology.hl7.org/CodeSystem/observation-category", "procedure")}
        (procedure,) = resources(bundle, "Procedure")
        assert obs.partOf[0].reference == f"urn:uuid:{procedure.id}"


def test_standard_codes_where_they_exist_and_never_an_invented_loinc(structured, clinician):
    bundle = export(clinician, structured.session)
    fields = field_observations(bundle)
    asa = fields["asa-class"]
    assert (SNOMED, "302132005") in codes(asa.code)
    assert (SNOMED, "413496000") in codes(asa.valueCodeableConcept)  # ASA class 2
    extent = fields["extent"]
    assert (SNOMED, "85774003") in codes(extent.valueCodeableConcept)  # terminal ileum
    assert component(extent, "cecal-intubation").valueBoolean is True
    polyp = fields["polyp-p1"]
    assert (SNOMED, "68496003") in codes(polyp.code)
    assert (SNOMED, "60184004") in codes(polyp.bodySite)  # sigmoid colon
    assert component(polyp, "polyp-size").valueQuantity.value == 6
    assert component(polyp, "polyp-size").valueQuantity.code == "mm"
    assert component(polyp, "paris-class").valueCodeableConcept.text == "0-Is (sessile)"
    assert component(polyp, "nice-class").valueCodeableConcept.coding[0].code == "2"
    assert component(polyp, "retrieved").valueBoolean is True
    assert component(polyp, "histology").valueCodeableConcept.text == "Tubular adenoma"
    withdrawal = fields["withdrawal-time"].valueQuantity
    assert (withdrawal.value, withdrawal.unit, withdrawal.system, withdrawal.code) == (
        7, "min", "http://unitsofmeasure.org", "min")
    assert fields["bbps-total"].valueInteger == 8 and len(fields["bbps-total"].hasMember) == 3
    assert fields["bbps-right"].valueInteger == 2
    every_coding = [c for obs in resources(bundle, "Observation") for c in (obs.code.coding or [])]
    assert not [c for c in every_coding if c.system == LOINC]
    local = {c.code for c in every_coding if c.system == REPORT_FIELD_SYSTEM}
    assert local <= set(REPORT_FIELDS)  # every local code comes from the one table


def test_an_empty_field_leaves_no_observation_and_an_empty_component_none(structured, clinician):
    record = structured.record
    data = dict(record.data)
    data.update(asa_class=None, sedation_level=None, sedation_agents="", bbps_left=None, complications=[])
    data["polyps"] = [{"id": "p9", "size_mm": 3}]
    record.data = data
    record.save()
    fields = field_observations(export(clinician, structured.session))
    assert "asa-class" not in fields and "sedation" not in fields and "complications" not in fields
    assert "bbps-left" not in fields and "bbps-total" not in fields  # no total without every segment
    polyp = fields["polyp-p9"]
    assert {next(c.code for c in comp.code.coding) for comp in polyp.component} == {"polyp-size", "histology"}
    assert polyp.bodySite is None


def test_a_signed_report_is_final_and_an_unsigned_one_preliminary(structured, clinician):
    unsigned = field_observations(export(clinician, structured.session))
    assert {o.status for o in unsigned.values()} == {"preliminary"}
    signed = sign(structured.session, clinician)
    bundle = export(clinician, signed)
    assert {o.status for o in field_observations(bundle).values()} == {"final"}
    (plan,) = resources(bundle, "CarePlan")
    assert (plan.status, plan.intent) == ("active", "plan")


def test_the_surveillance_interval_is_a_care_plan_linked_from_the_report(structured, clinician):
    bundle = export(clinician, structured.session)
    (plan,) = resources(bundle, "CarePlan")
    (report,) = resources(bundle, "DiagnosticReport")
    assert (plan.status, plan.intent) == ("draft", "proposal")
    (link,) = [x for x in report.extension if x.url == fhir.RECOMMENDATION_URL]
    assert link.valueReference.reference == f"urn:uuid:{plan.id}"
    detail = plan.activity[0].detail
    assert (SNOMED, "73761001") in codes(detail.code) and detail.doNotPerform is None
    assert detail.scheduledTiming.code.text.startswith("in 3 years from the procedure")
    due = detail.scheduledTiming.repeat.boundsPeriod.start
    # From the procedure date (a recorded session: the recording's upload) plus the interval.
    assert str(due)[:10] == add_months(structured.video.created_at.date(), 36).isoformat()
    assert detail.reasonReference[0].reference == f"urn:uuid:{report.id}"
    assert plan.description == "Repeat colonoscopy in 3 years"
    assert "changed the suggested interval" in plan.note[0].text
    assert "Surveillance: Repeat colonoscopy in 3 years." in report.conclusion
    (procedure,) = resources(bundle, "Procedure")
    assert procedure.followUp[0].text == "Repeat colonoscopy in 3 years"


@pytest.mark.parametrize(("day", "months", "due"), [
    ("2024-01-31", 1, "2024-02-29"), ("2023-11-15", 36, "2026-11-15"), ("2024-12-01", 1, "2025-01-01"),
])
def test_a_due_date_adds_calendar_months(day, months, due):
    from datetime import date

    assert add_months(date.fromisoformat(day), months).isoformat() == due


def test_no_surveillance_is_a_do_not_perform_activity(structured, clinician):
    record = structured.record
    record.data = {**record.data, "surveillance": {**record.data["surveillance"], "chosen_months": 0}}
    record.save()
    (plan,) = resources(export(clinician, structured.session), "CarePlan")
    assert plan.activity[0].detail.doNotPerform is True and plan.activity[0].detail.scheduledTiming is None
    assert plan.description == "No surveillance colonoscopy"


def test_the_landmark_key_frames_are_media_the_extent_is_derived_from(structured, clinician):
    bundle = export(clinician, structured.session)
    media = {m.id: m for m in resources(bundle, "Media")}
    assert {str(f.pk) for f in structured.frames} <= set(media)
    extent = field_observations(bundle)["extent"]
    assert {r.reference for r in extent.derivedFrom} == {f"urn:uuid:{f.pk}" for f in structured.frames}
    assert media[str(structured.frames[0].pk)].content.title == "Key frame at media time 1:35"


def test_upper_gi_and_bronchoscopy_fields(clinician):
    upper = ProcedureSessionFactory(clinician=clinician, procedure_type="upper_gi")
    StructuredReport.objects.create(session=upper, data={
        "barrett": True, "prague_c_cm": 2, "prague_m_cm": 5, "la_grade": "B",
        "ulcers": [{"id": "u1", "location": "duodenal_bulb", "forrest": "IIa", "size_mm": 8}],
    })
    fields = field_observations(export(clinician, upper))
    assert set(fields) == {"barrett", "prague", "la-grade", "ulcer-u1"}
    prague = fields["prague"]
    assert component(prague, "prague-c").valueQuantity.value == 2
    assert component(prague, "prague-m").valueQuantity.value == 5
    assert component(prague, "prague-m").valueQuantity.code == "cm"
    assert fields["la-grade"].valueCodeableConcept.coding[0].code == "B"
    assert component(fields["ulcer-u1"], "forrest-class").valueCodeableConcept.text.startswith("Forrest IIa")
    assert not resources(export(clinician, upper), "CarePlan")

    broncho = ProcedureSessionFactory(clinician=clinician, procedure_type="bronchoscopy")
    StructuredReport.objects.create(session=broncho, data={
        "segments_examined": ["trachea", "main_carina"],
        "samples": [{"id": "s1", "kind": "bal", "site": "right_middle_lobe_bronchus", "jar": "S1"}],
    })
    fields = field_observations(export(clinician, broncho))
    assert set(fields) == {"segments-examined", "sample-s1"}
    assert [c.valueCodeableConcept.text for c in fields["segments-examined"].component] == ["Trachea", "Main carina"]
    assert fields["sample-s1"].valueCodeableConcept.text == "Bronchoalveolar lavage (BAL)"


def test_a_session_without_a_structured_report_exports_as_before(reviewed, clinician):
    bundle = export(clinician, reviewed.session)
    assert field_observations(bundle) == {} and not resources(bundle, "CarePlan")
    (report,) = resources(bundle, "DiagnosticReport")
    assert "Structured report: No structured report." in report.conclusion
