"""The FHIR export: a ``collection`` Bundle built from fhir.resources R4B models.

Building every resource through the models validates it as it is made (a wrong type or a
missing required element raises here, not in the EHR). R4B (4.3.0) is used because the
package ships it; the elements used here are the same in R4 (4.0.1).

What is in the Bundle:
- one ``Procedure`` (SNOMED CT procedure code, performer, period, link to the report);
- one ``DiagnosticReport`` (status ``preliminary`` or ``final``, SNOMED CT procedure code,
  conclusion with the disclaimer, results and key-frame media);
- one ``Observation`` per finding in the report (confirmed or edited; never a proposal
  nobody decided on, never a rejected one);
- one ``Media`` per recording those findings come from (type ``video``; id, number, duration
  and sha256 of the recording; no content bytes and never the uploaded file name), which
  each finding's Observation is ``derivedFrom`` (with its key frame's Media);
- the structured report (``exports.fhir_structured``): one ``Observation`` per filled-in
  field (BBPS, withdrawal time, extent, each polyp, ASA, sedation, ...), in the report's
  ``result`` beside the findings, and the surveillance interval as a ``CarePlan`` that the
  report links with the ``StructureDefinition/recommendation`` extension;
- one ``Media`` per key frame of those findings and of the cecal landmarks, the JPEG inline as base64. Inline rather
  than a URL: an EHR connector authenticates with an API token and could not fetch the
  portal's cookie-authenticated frame URL, and the frames are small (at most the sampling
  size, 896 px by default).
Patient and encounter are the EHR's own opaque references (``patient_ref`` /
``encounter_ref``): literal ``Patient/<ref>`` references when the value is a valid FHIR id,
always with the identifier; MedVision holds no demographics.

Local code systems and extensions (``https://medvision.example/fhir/...``; the ``.example``
domain is reserved and will never resolve):
- ``CodeSystem/risk``: ``low`` | ``medium`` | ``high``, the AI/clinician risk level, used as
  Observation.interpretation;
- ``CodeSystem/finding-category`` and ``CodeSystem/body-site``: the analyzer schema's
  category and location values (``analysis.engine.schemas``);
- ``StructureDefinition/media-time``: offsets of a finding or frame into the recording or
  live stream (``start-ms``, ``end-ms``, integers), and for a recorded finding which
  recording they are offsets into: ``recording`` (integer, the session's recording number,
  "Recording 2") and ``video`` (string, MedVision's recording id, also the recording Media's
  identifier). A live finding has no ``recording``. Live media time has no defined wall-clock
  origin, so no Observation.effective[x] is invented from it; the report's effectivePeriod
  is the session's start and end.
- ``NamingSystem/patient-ref``, ``NamingSystem/encounter-ref``, ``NamingSystem/session``:
  identifier systems for the EHR references and MedVision's session id;
  ``NamingSystem/recording`` (recording id) and ``NamingSystem/recording-sha256`` (the
  recording file's SHA-256, hex): identifiers of a recording's Media.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.diagnosticreport import DiagnosticReport, DiagnosticReportMedia
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.procedure import Procedure, ProcedurePerformer
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference

from analysis.engine.schemas import RISK_LEVELS
from medvision.notices import DEMO_NOTICE
from reporting.withdrawal import format_duration

from .disclaimer import disclaimer
from .fhir_structured import StructuredFhir
from .formatting import iso, label_of, media_time
from .frames import read_frame
from .report import next_step_by_ai
from .selectors import ExportSnapshot

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://medvision.example/fhir"
RISK_SYSTEM = f"{LOCAL}/CodeSystem/risk"
CATEGORY_SYSTEM = f"{LOCAL}/CodeSystem/finding-category"
BODY_SITE_SYSTEM = f"{LOCAL}/CodeSystem/body-site"
MEDIA_TIME_URL = f"{LOCAL}/StructureDefinition/media-time"
# DiagnosticReport -> the CarePlan holding the surveillance interval. R4 has no element for a
# report's follow-up recommendation, so a local extension carries the reference.
RECOMMENDATION_URL = f"{LOCAL}/StructureDefinition/recommendation"
PATIENT_REF_SYSTEM = f"{LOCAL}/NamingSystem/patient-ref"
ENCOUNTER_REF_SYSTEM = f"{LOCAL}/NamingSystem/encounter-ref"
SESSION_SYSTEM = f"{LOCAL}/NamingSystem/session"
RECORDING_SYSTEM = f"{LOCAL}/NamingSystem/recording"
RECORDING_SHA256_SYSTEM = f"{LOCAL}/NamingSystem/recording-sha256"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"

# SNOMED CT procedure codes (International Edition concept ids):
#   73761001  Colonoscopy (procedure)
#   76009000  Esophagogastroduodenoscopy (procedure) - upper GI endoscopy. Not 386831001,
#             which is "Endoscopy of stomach", narrower than what an upper GI session covers.
#   10847001  Bronchoscopy (procedure)
# "other" procedures are sent as text only.
PROCEDURE_CODES = {
    "colonoscopy": ("73761001", "Colonoscopy"),
    "upper_gi": ("76009000", "Esophagogastroduodenoscopy"),
    "bronchoscopy": ("10847001", "Bronchoscopy"),
}

# Finding codes only where the mapping is unambiguous: a polyp seen in the colon during a
# colonoscopy is SNOMED CT 68496003 "Polyp of colon (disorder)". Every other category is
# sent as text plus the local category code rather than a guessed SNOMED concept.
COLON_SEGMENTS = {
    "cecum", "ascending_colon", "hepatic_flexure", "transverse_colon", "splenic_flexure",
    "descending_colon", "sigmoid_colon", "rectum", "undetermined",
}

RISK_DISPLAY = {risk: f"{risk.capitalize()} risk" for risk in RISK_LEVELS}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_NAMESPACE = uuid.UUID("4f0e0c64-8a0c-4c7e-9d36-3d3f1b1e8b2a")  # MedVision's, for stable urn:uuid ids


def _session_resource_id(kind: str, session) -> str:
    """Stable id for a resource MedVision derives from a session (one per kind)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{session.pk}"))


def _urn(resource_id) -> str:
    # Entries are identified by urn:uuid full URLs equal to their ids, and reference each
    # other by them (FHIR's rule for resources that have no server URL yet).
    return f"urn:uuid:{resource_id}"


def _external(resource_type: str, system: str, value: str) -> Reference | None:
    if not value:
        return None
    literal = f"{resource_type}/{value}" if FHIR_ID.match(value) else None
    return Reference(reference=literal, type=resource_type, identifier=Identifier(system=system, value=value))


def _subject(session) -> Reference:
    # Procedure.subject is required; a session without a patient reference still names that.
    return _external("Patient", PATIENT_REF_SYSTEM, session.patient_ref) or Reference(
        type="Patient", display="Patient not identified in MedVision (no patient reference recorded)"
    )


def _procedure_code(session) -> CodeableConcept:
    text = session.get_procedure_type_display()
    known = PROCEDURE_CODES.get(session.procedure_type)
    if known is None:
        return CodeableConcept(text=text)
    return CodeableConcept(coding=[Coding(system=SNOMED, code=known[0], display=known[1])], text=text)


def _finding_code(finding, procedure_type: str) -> CodeableConcept:
    codings = []
    if procedure_type == "colonoscopy" and finding.category == "polyp" and finding.location in COLON_SEGMENTS:
        codings.append(Coding(system=SNOMED, code="68496003", display="Polyp of colon"))
    codings.append(Coding(system=CATEGORY_SYSTEM, code=finding.category, display=label_of(finding.category)))
    return CodeableConcept(coding=codings, text=finding.label or label_of(finding.category))


def _media_time(start_ms: int, end_ms: int | None = None, video=None) -> Extension:
    parts = [Extension(url="start-ms", valueInteger=int(start_ms))]
    if end_ms is not None:
        parts.append(Extension(url="end-ms", valueInteger=int(end_ms)))
    if video is not None:
        parts.append(Extension(url="recording", valueInteger=int(video.number)))
        parts.append(Extension(url="video", valueString=str(video.pk)))
    return Extension(url=MEDIA_TIME_URL, extension=parts)


def _endoscopy_media(session, refs: dict, code: str, display: str) -> dict:
    """What every Media of this report shares: completed, endoscopy, the patient's, part of the procedure."""
    return dict(
        status="completed",
        type=CodeableConcept(coding=[Coding(system=MEDIA_TYPE, code=code, display=display)]),
        modality=CodeableConcept(coding=[Coding(system=DICOM_DCM, code="ES", display="Endoscopy")]),
        subject=_subject(session),
        encounter=_external("Encounter", ENCOUNTER_REF_SYSTEM, session.encounter_ref),
        partOf=[Reference(reference=refs["procedure"], type="Procedure")],
    )


def _recording_media(video, snapshot: ExportSnapshot, refs: dict) -> Media:
    """A recording the findings' times refer to: named, measured and hashed, not embedded
    (recordings are large; the bundle zip and the portal hold the file)."""
    session = snapshot.session
    return Media(
        id=str(video.pk),
        identifier=[Identifier(system=RECORDING_SYSTEM, value=str(video.pk)),
                    Identifier(system=RECORDING_SHA256_SYSTEM, value=video.sha256)],
        **_endoscopy_media(session, refs, "video", "Video"),
        width=video.width or None,
        height=video.height or None,
        duration=video.duration_s,
        content=Attachment(title=video.display_name, size=video.size_bytes or None),
        note=[Annotation(text=f"{video.display_name} of this session; findings' media times are offsets into it.")],
    )


def _period(start, end) -> Period | None:
    if start is None and end is None:
        return None
    return Period(start=iso(start), end=iso(end))


def _observation(finding, snapshot: ExportSnapshot, refs: dict, status: str, issued: str) -> Observation:
    session = snapshot.session
    notes = []
    if finding.description:
        notes.append(Annotation(text=f"Description: {finding.description}"))
    if finding.suggested_next_step:
        # Only an AI proposal's unedited next step is the model's; a typed one is the clinician's.
        who = "Suggested next step (AI proposal)" if next_step_by_ai(finding) else "Next step (clinician)"
        notes.append(Annotation(text=f"{who}: {finding.suggested_next_step}"))
    if finding.clinician_note:
        notes.append(Annotation(text=f"Clinician note: {finding.clinician_note}",
                                authorString=finding.reviewed_by.get_username() if finding.reviewed_by_id else None))
    if finding.video_id:
        notes.append(Annotation(text=(
            f"Seen in {finding.video.display_name} of this session at media time "
            f"{media_time(finding.start_ms)}-{media_time(finding.end_ms)} (offsets into that recording)."
        )))
    if finding.origin == "ai":
        demo = f" {DEMO_NOTICE}" if finding.is_demo else ""
        notes.append(Annotation(text=(
            f"AI proposal by {finding.model_id or finding.backend} (prompt {finding.prompt_version or '-'}), "
            f"{finding.get_review_status_display().lower()} by the clinician.{demo}"
        )))
    frame_ref = refs.get(("frame", str(finding.frame_id))) if finding.frame_id else None
    recording_ref = refs.get(("video", str(finding.video_id))) if finding.video_id else None
    derived = ([Reference(reference=frame_ref, type="Media")] if frame_ref else []) + (
        [Reference(reference=recording_ref, type="Media", display=finding.video.display_name)] if recording_ref else [])
    return Observation(
        id=str(finding.pk),
        identifier=[Identifier(system=f"{LOCAL}/NamingSystem/finding", value=str(finding.pk))],
        status=status,
        category=[CodeableConcept(coding=[Coding(system=OBSERVATION_CATEGORY, code="procedure", display="Procedure")])],
        code=_finding_code(finding, session.procedure_type),
        subject=_subject(session),
        encounter=_external("Encounter", ENCOUNTER_REF_SYSTEM, session.encounter_ref),
        issued=issued,
        performer=[Reference(display=finding.reviewed_by.get_username())] if finding.reviewed_by_id else None,
        valueQuantity=Quantity(value=finding.size_mm, unit="mm", system=UCUM, code="mm")
        if finding.size_mm is not None else None,
        interpretation=[CodeableConcept(
            coding=[Coding(system=RISK_SYSTEM, code=finding.risk, display=RISK_DISPLAY.get(finding.risk))],
            text=RISK_DISPLAY.get(finding.risk),
        )],
        bodySite=CodeableConcept(
            coding=[Coding(system=BODY_SITE_SYSTEM, code=finding.location, display=label_of(finding.location))],
            text=label_of(finding.location),
        ) if finding.location else None,
        method=CodeableConcept(text="AI proposal reviewed by a clinician" if finding.origin == "ai"
                               else "Recorded by the clinician"),
        derivedFrom=derived or None,
        note=notes or None,
        extension=[_media_time(finding.start_ms, finding.end_ms, finding.video if finding.video_id else None)],
    )


def _media(frame, content: bytes, snapshot: ExportSnapshot, refs: dict) -> Media:
    session = snapshot.session
    return Media(
        id=str(frame.pk),
        **_endoscopy_media(session, refs, "image", "Image"),
        width=frame.width or None,
        height=frame.height or None,
        content=Attachment(
            contentType="image/jpeg",
            data=base64.b64encode(content),
            size=len(content),
            # FHIR's Attachment.hash is SHA-1 by definition (base64 of the digest).
            hash=base64.b64encode(hashlib.sha1(content).digest()),
            title=f"Key frame at media time {format_duration(frame.timestamp_ms / 1000)}",
        ),
        extension=[_media_time(frame.timestamp_ms)],
    )


def build_fhir_bundle(snapshot: ExportSnapshot) -> Bundle:
    session = snapshot.session
    is_final = snapshot.is_final
    notice = disclaimer(is_final=is_final, contains_demo_output=snapshot.contains_demo_output)
    issued = iso(session.signed_at if is_final else snapshot.exported_at)
    procedure_id = _session_resource_id("Procedure", session)
    report_id = _session_resource_id("DiagnosticReport", session)
    refs = {"procedure": _urn(procedure_id), "report": _urn(report_id)}

    in_report = [f for f in snapshot.findings if f.in_signed_report]
    wanted = {str(f.frame_id) for f in in_report if f.frame_id}
    media_entries = []
    for frame_id, frame in sorted(snapshot.key_frames.items(), key=lambda kv: (kv[1].timestamp_ms, kv[0])):
        if frame_id not in wanted:
            continue
        content = read_frame(frame)
        if content is None:
            continue
        refs[("frame", frame_id)] = _urn(frame_id)
        media_entries.append((refs[("frame", frame_id)], frame, _media(frame, content, snapshot, refs)))

    # The cecal landmarks' key frames (photo documentation of cecal intubation).
    view = snapshot.structured
    landmark_media = {}
    for mark in view.landmark_frames:
        frame_id = str(mark.frame.pk)
        if ("frame", frame_id) not in refs:
            content = read_frame(mark.frame)
            if content is None:
                continue
            refs[("frame", frame_id)] = _urn(frame_id)
            media_entries.append((refs[("frame", frame_id)], mark.frame, _media(mark.frame, content, snapshot, refs)))
        landmark_media[mark.kind] = refs[("frame", frame_id)]

    recording_entries = []
    wanted_videos = {f.video_id for f in in_report if f.video_id}
    for video in snapshot.videos:
        if video.pk in wanted_videos:
            refs[("video", str(video.pk))] = _urn(video.pk)
            recording_entries.append((refs[("video", str(video.pk))], _recording_media(video, snapshot, refs)))

    # The report holds the findings a clinician decided are real; in a preliminary export
    # they are marked preliminary, and proposals nobody decided on are left out.
    observation_status = "final" if is_final else "preliminary"
    observations = [
        (_urn(f.pk), _observation(f, snapshot, refs, observation_status, issued))
        for f in in_report
    ]
    structured = StructuredFhir(
        view=view, session=session, refs=refs, issued=issued, landmark_media=landmark_media,
        common={"subject": _subject(session),
                "encounter": _external("Encounter", ENCOUNTER_REF_SYSTEM, session.encounter_ref)},
        procedure_date=snapshot.procedure_date[1],
    )
    field_observations = structured.build()
    care_plan = structured.care_plan()

    identifier = Identifier(system=SESSION_SYSTEM, value=str(session.pk))
    clinician = Reference(display=session.clinician.get_username())
    signer = Reference(display=session.signed_by.get_username()) if session.signed_by_id else None
    conclusion = [
        f"{session.get_procedure_type_display()}: {len(observations)} finding(s) "
        + ("in the signed report." if is_final else "confirmed or corrected so far (preliminary)."),
    ]
    conclusion.append(f"Structured report: {view.status_label}.")
    if view.report is not None:
        if view.report.impression:
            conclusion.append(f"Impression: {view.report.impression}")
        if view.report.recommendations:
            conclusion.append(f"Recommendations: {view.report.recommendations}")
    if care_plan is not None:
        conclusion.append(f"Surveillance: {care_plan[1].description}.")
    if session.notes:
        conclusion.append(f"Clinician notes: {session.notes}")
    conclusion.append(notice["text"])

    procedure = Procedure(
        id=procedure_id,
        identifier=[identifier],
        status="completed" if (is_final or session.ended_at) else "in-progress",
        code=_procedure_code(session),
        subject=_subject(session),
        encounter=_external("Encounter", ENCOUNTER_REF_SYSTEM, session.encounter_ref),
        performedPeriod=_period(session.started_at, session.ended_at),
        performer=[ProcedurePerformer(actor=clinician)],
        report=[Reference(reference=refs["report"], type="DiagnosticReport")],
        followUp=[CodeableConcept(text=care_plan[1].description)] if care_plan is not None else None,
        note=[Annotation(text=notice["text"])],
    )
    report = DiagnosticReport(
        id=report_id,
        meta=Meta(tag=[Coding(system=f"{LOCAL}/CodeSystem/document-status", code=snapshot.document_status)]),
        identifier=[identifier],
        status="final" if is_final else "preliminary",
        code=_procedure_code(session),
        subject=_subject(session),
        encounter=_external("Encounter", ENCOUNTER_REF_SYSTEM, session.encounter_ref),
        effectivePeriod=_period(session.started_at, session.ended_at),
        issued=issued,
        performer=[clinician],
        resultsInterpreter=[signer] if signer else None,
        result=[Reference(reference=urn, type="Observation") for urn, _ in observations + field_observations] or None,
        extension=[Extension(url=RECOMMENDATION_URL, valueReference=Reference(
            reference=care_plan[0], type="CarePlan", display=care_plan[1].description))] if care_plan else None,
        media=[DiagnosticReportMedia(link=Reference(reference=urn, type="Media"),
                                     comment=f"Key frame at media time {format_duration(frame.timestamp_ms / 1000)}")
               for urn, frame, _ in media_entries] or None,
        conclusion="\n".join(conclusion),
    )
    entries = [
        BundleEntry(fullUrl=refs["report"], resource=report),
        BundleEntry(fullUrl=refs["procedure"], resource=procedure),
        *[BundleEntry(fullUrl=urn, resource=obs) for urn, obs in observations],
        *[BundleEntry(fullUrl=urn, resource=obs) for urn, obs in field_observations],
        *([BundleEntry(fullUrl=care_plan[0], resource=care_plan[1])] if care_plan else []),
        *[BundleEntry(fullUrl=urn, resource=media) for urn, media in recording_entries],
        *[BundleEntry(fullUrl=urn, resource=media) for urn, _, media in media_entries],
    ]
    return Bundle(
        id=str(uuid.uuid4()),
        identifier=Identifier(system=f"{LOCAL}/NamingSystem/export", value=str(uuid.uuid4())),
        type="collection",
        timestamp=iso(snapshot.exported_at),
        entry=entries,
    )


def build_fhir_json(snapshot: ExportSnapshot) -> bytes:
    return build_fhir_bundle(snapshot).model_dump_json(exclude_none=True).encode("utf-8")
