"""The FHIR export, parsed back with fhir.resources (R4B) and checked resource by resource."""

from __future__ import annotations

import hashlib

import pytest
from fhir.resources.R4B.bundle import Bundle

from exports import fhir, services
from exports.models import Export, ExportKind

pytestmark = pytest.mark.django_db


def export(user, session) -> Bundle:
    result = services.fhir_export(actor=user, session=session)
    assert result.content_type == "application/fhir+json"
    return Bundle.model_validate_json(result.content)


def by_type(bundle: Bundle) -> dict[str, list]:
    out: dict[str, list] = {}
    for entry in bundle.entry:
        out.setdefault(entry.resource.get_resource_type(), []).append(entry)
    return out


def test_a_signed_session_is_a_final_report_with_its_findings(signed, clinician):
    bundle = export(clinician, signed.session)
    assert bundle.type == "collection" and bundle.timestamp is not None
    entries = by_type(bundle)
    (report,) = [e.resource for e in entries["DiagnosticReport"]]
    assert report.status == "final"
    # Every signed session has a structured report, whose fields are Observations too: count
    # the findings' (any finding's, so that a rejected or proposed one would show).
    finding_ids = {str(pk) for pk in signed.session.findings.values_list("pk", flat=True)}
    observations = [e.resource for e in entries["Observation"] if e.resource.id in finding_ids]
    in_report = signed.session.findings.filter(review_status__in=["confirmed", "edited"]).count()
    assert len(observations) == in_report == 2
    assert {o.status for o in observations} == {"final"}
    assert {o.id for o in observations} == {str(signed.confirmed.pk), str(signed.edited.pk)}
    assert "NOT FOR CLINICAL USE" in report.conclusion and "Health AI Developer Foundations" in report.conclusion
    assert report.resultsInterpreter[0].display == "dr.owner"
    assert Export.objects.get().kind == ExportKind.FHIR and Export.objects.get().is_final


def test_references_resolve_inside_the_bundle(signed, clinician):
    bundle = export(clinician, signed.session)
    full_urls = {e.fullUrl for e in bundle.entry}
    assert len(full_urls) == len(bundle.entry) and all(u.startswith("urn:uuid:") for u in full_urls)
    for entry in bundle.entry:
        assert entry.fullUrl == f"urn:uuid:{entry.resource.id}"
    entries = by_type(bundle)
    report = entries["DiagnosticReport"][0].resource
    procedure_entry = entries["Procedure"][0]
    assert {r.reference for r in report.result} == {e.fullUrl for e in entries["Observation"]}
    assert {m.link.reference for m in report.media} == {e.fullUrl for e in entries["Media"]}
    assert procedure_entry.resource.report[0].reference == entries["DiagnosticReport"][0].fullUrl
    for media in (e.resource for e in entries["Media"]):
        assert media.partOf[0].reference == procedure_entry.fullUrl
    confirmed = next(e.resource for e in entries["Observation"] if e.resource.id == str(signed.confirmed.pk))
    assert confirmed.derivedFrom[0].reference == f"urn:uuid:{signed.frames[0].pk}"


def test_patient_and_encounter_are_the_ehr_references(signed, clinician):
    bundle = export(clinician, signed.session)
    session = signed.session
    for entry in bundle.entry:
        subject = entry.resource.subject
        assert subject.reference == f"Patient/{session.patient_ref}"
        assert subject.identifier.system == fhir.PATIENT_REF_SYSTEM and subject.identifier.value == session.patient_ref
        assert entry.resource.encounter.reference == "Encounter/ENC-77"


def test_a_reference_that_is_not_a_fhir_id_is_sent_as_identifier_only(session, clinician, media_root):
    session.patient_ref = "MRN|12:34"
    session.save()
    bundle = export(clinician, session)
    subject = by_type(bundle)["DiagnosticReport"][0].resource.subject
    assert subject.reference is None and subject.identifier.value == "MRN|12:34"
    session.patient_ref = ""
    session.save()
    procedure = by_type(export(clinician, session))["Procedure"][0].resource
    assert procedure.subject.reference is None and "no patient reference" in procedure.subject.display


def test_observation_codes_risk_site_and_size(signed, clinician):
    entries = by_type(export(clinician, signed.session))
    observations = {e.resource.id: e.resource for e in entries["Observation"]}
    polyp = observations[str(signed.confirmed.pk)]
    assert [(c.system, c.code) for c in polyp.code.coding] == [
        ("http://snomed.info/sct", "68496003"), (fhir.CATEGORY_SYSTEM, "polyp"),
    ]
    assert polyp.code.text == signed.confirmed.label
    assert polyp.category[0].coding[0].code == "procedure"
    assert (polyp.valueQuantity.value, polyp.valueQuantity.unit) == (6.5, "mm")
    assert (polyp.valueQuantity.system, polyp.valueQuantity.code) == ("http://unitsofmeasure.org", "mm")
    risk = polyp.interpretation[0].coding[0]
    assert (risk.system, risk.code) == ("https://medvision.example/fhir/CodeSystem/risk", "high")
    assert polyp.bodySite.text == "Sigmoid colon" and polyp.bodySite.coding[0].code == "sigmoid_colon"
    media_time = polyp.extension[0]
    assert media_time.url == fhir.MEDIA_TIME_URL
    assert {e.url: e.valueInteger for e in media_time.extension} == {"start-ms": 1500, "end-ms": 2500}
    assert any("Clinician note: -2 mm margin" in n.text for n in polyp.note)
    ulcer = observations[str(signed.edited.pk)]
    assert [c.system for c in ulcer.code.coding] == [fhir.CATEGORY_SYSTEM]  # no guessed SNOMED code
    assert ulcer.valueQuantity.value == 12.0 and ulcer.bodySite.text == "Rectum"


def test_procedure_codes_are_snomed(signed, clinician):
    entries = by_type(export(clinician, signed.session))
    for resource in (entries["Procedure"][0].resource, entries["DiagnosticReport"][0].resource):
        assert (resource.code.coding[0].system, resource.code.coding[0].code) == ("http://snomed.info/sct", "73761001")
    assert entries["Procedure"][0].resource.status == "completed"
    for procedure_type, code in (("upper_gi", "76009000"), ("bronchoscopy", "10847001")):
        signed.session.procedure_type = procedure_type
        assert fhir._procedure_code(signed.session).coding[0].code == code
    signed.session.procedure_type = "other"
    assert fhir._procedure_code(signed.session).coding is None


def test_key_frames_travel_inline_as_jpeg(signed, clinician):
    entries = by_type(export(clinician, signed.session))
    media = {e.resource.id: e.resource for e in entries["Media"]}
    assert set(media) == {str(signed.frames[0].pk), str(signed.frames[1].pk)}  # not the rejected finding's frame
    frame = signed.frames[0]
    with frame.image.open("rb") as fh:
        jpeg = fh.read()
    content = media[str(frame.pk)].content
    assert content.contentType == "image/jpeg" and content.data == jpeg and content.size == len(jpeg)
    assert content.hash == hashlib.sha1(jpeg).digest()
    assert media[str(frame.pk)].status == "completed"


def test_an_unsigned_session_is_preliminary_and_leaves_undecided_proposals_out(reviewed, clinician):
    result = services.fhir_export(actor=clinician, session=reviewed.session)
    bundle = Bundle.model_validate_json(result.content)
    entries = by_type(bundle)
    assert entries["DiagnosticReport"][0].resource.status == "preliminary"
    assert {o.resource.status for o in entries["Observation"]} == {"preliminary"}
    assert {o.resource.id for o in entries["Observation"]} == {str(reviewed.confirmed.pk), str(reviewed.edited.pk)}
    assert entries["Procedure"][0].resource.status == "in-progress"
    assert "PRELIMINARY" in entries["DiagnosticReport"][0].resource.conclusion
    raw = result.content.decode()
    assert str(reviewed.proposed.pk) not in raw and str(reviewed.rejected.pk) not in raw
