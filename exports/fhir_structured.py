"""The structured report in FHIR: Observations for its fields, a CarePlan for the surveillance interval.

``exports.fhir`` puts these into the Bundle, lists the Observations in the DiagnosticReport's
``result`` and links the CarePlan from it. Each Observation is ``final`` for a signed session
and ``preliminary`` before, category ``procedure``, ``partOf`` the Procedure. A field left
empty produces no Observation (and an empty component is left out), so an EHR never reads a
blank as a value.

Codes: a standard code only where it exists and means exactly this field or value, else the
local code system ``https://medvision.example/fhir/CodeSystem/report-field`` (fields) and
``.../CodeSystem/<table>`` (values: the codes of ``reporting.vocabulary``), always with the
label as ``display``/``text``. No LOINC code is used: none was found that means exactly a
BBPS segment/total, a withdrawal time, cecal intubation, Paris/NICE/Forrest/LA/Prague (an
invented or near-miss LOINC code would be read as a real result by an EHR).
Verified standard codes:
- SNOMED CT 302132005 "American Society of Anesthesiologists physical status class
  (observable entity)", values 413495001..413499007 "ASA physical status class 1..5";
- SNOMED CT body structures 32713005 cecum, 85774003 terminal ileum, and the colon segments
  of DICOM CID 6210 (ascending 9040008, hepatic flexure 48338005, transverse 485005, splenic
  flexure 72592005, descending 32622004, sigmoid 60184004, rectum 34402009);
- SNOMED CT 68496003 "Polyp of colon", 73761001 "Colonoscopy" (the surveillance activity);
- UCUM ``min``, ``mm``, ``cm``.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import date

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity, CarePlanActivityDetail
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.timing import Timing, TimingRepeat

from reporting import vocabulary as v
from reporting.withdrawal import format_duration

from .structured import StructuredView, interval_span, interval_text, location_label

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://medvision.example/fhir"
REPORT_FIELD_SYSTEM = f"{LOCAL}/CodeSystem/report-field"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_NAMESPACE = uuid.UUID("0b6f3f5e-1c7a-4d0e-9a51-6a2f8c1d7e44")  # stable ids of report-field resources

# The local codes of report fields, in one table: code -> display.
REPORT_FIELDS: dict[str, str] = {
    "indication": "Indication for the procedure",
    "asa-class": "ASA physical status class",
    "sedation": "Sedation",
    "complications": "Complications",
    "complication": "Complication",
    "extent": "Extent of the examination reached",
    "cecal-intubation": "Cecal intubation (cecum or beyond reached)",
    "incomplete-location": "Where an incomplete colonoscopy stopped",
    "incomplete-reason": "Why an incomplete colonoscopy stopped",
    "bbps-right": "Boston Bowel Preparation Scale, right colon",
    "bbps-transverse": "Boston Bowel Preparation Scale, transverse colon",
    "bbps-left": "Boston Bowel Preparation Scale, left colon",
    "bbps-total": "Boston Bowel Preparation Scale, total",
    "withdrawal-time": "Colonoscope withdrawal time (cecum reached to scope out)",
    "polyp": "Polyp",
    "polyp-size": "Polyp size",
    "paris-class": "Paris classification",
    "nice-class": "NICE classification",
    "location": "Location",
    "resection": "Resection method",
    "retrieved": "Retrieved",
    "specimen-jar": "Specimen jar",
    "histology": "Histology",
    "barrett": "Barrett's esophagus",
    "prague": "Prague C & M classification",
    "prague-c": "Prague C (circumferential extent)",
    "prague-m": "Prague M (maximum extent)",
    "la-grade": "Esophagitis, Los Angeles grade",
    "ulcer": "Ulcer",
    "forrest-class": "Forrest classification",
    "ulcer-size": "Ulcer size",
    "biopsy": "Biopsy taken",
    "biopsy-purpose": "Biopsy purpose",
    "segments-examined": "Airway segments examined",
    "segment": "Airway segment",
    "segment-finding": "Finding in an airway segment",
    "sample": "Sample taken",
    "sample-kind": "Sample kind",
    "sample-note": "Sample note",
}

# The local value code systems (one per vocabulary table): what each coded value's system is.
VALUE_SYSTEMS = {
    "indication": (f"{LOCAL}/CodeSystem/indication", v.INDICATION_KINDS),
    "asa": (f"{LOCAL}/CodeSystem/asa-class", v.ASA_CLASSES),
    "sedation": (f"{LOCAL}/CodeSystem/sedation-level", v.SEDATION_LEVELS),
    "complication": (f"{LOCAL}/CodeSystem/complication", v.COMPLICATIONS),
    "colon-extent": (f"{LOCAL}/CodeSystem/colon-extent", v.COLON_EXTENTS),
    "upper-gi-extent": (f"{LOCAL}/CodeSystem/upper-gi-extent", v.UPPER_GI_EXTENTS),
    "incomplete-reason": (f"{LOCAL}/CodeSystem/incomplete-reason", v.INCOMPLETE_REASONS),
    "paris": (f"{LOCAL}/CodeSystem/paris-class", v.PARIS_CLASSES),
    "nice": (f"{LOCAL}/CodeSystem/nice-class", v.NICE_CLASSES),
    "resection": (f"{LOCAL}/CodeSystem/resection-method", v.RESECTION_METHODS),
    "histology": (f"{LOCAL}/CodeSystem/polyp-histology", v.POLYP_HISTOLOGY),
    "la-grade": (f"{LOCAL}/CodeSystem/la-grade", v.LA_GRADES),
    "forrest": (f"{LOCAL}/CodeSystem/forrest-class", v.FORREST_CLASSES),
    "sample-kind": (f"{LOCAL}/CodeSystem/broncho-sample-kind", v.BRONCHO_SAMPLE_KINDS),
}
BODY_SITE_SYSTEM = f"{LOCAL}/CodeSystem/body-site"  # the analyzer's location codes (as in exports.fhir)

ASA_OBSERVABLE = ("302132005", "American Society of Anesthesiologists physical status class")
ASA_SNOMED = {
    "I": ("413495001", "American Society of Anesthesiologists physical status class 1"),
    "II": ("413496000", "American Society of Anesthesiologists physical status class 2"),
    "III": ("413497009", "American Society of Anesthesiologists physical status class 3"),
    "IV": ("413498004", "American Society of Anesthesiologists physical status class 4"),
    "V": ("413499007", "American Society of Anesthesiologists physical status class 5"),
}
BODY_SITE_SNOMED = {
    "terminal_ileum": ("85774003", "Terminal ileum"),
    "cecum": ("32713005", "Cecum"),
    "ascending_colon": ("9040008", "Ascending colon"),
    "hepatic_flexure": ("48338005", "Hepatic flexure of colon"),
    "transverse_colon": ("485005", "Transverse colon"),
    "splenic_flexure": ("72592005", "Splenic flexure of colon"),
    "descending_colon": ("32622004", "Descending colon"),
    "sigmoid_colon": ("60184004", "Sigmoid colon"),
    "rectum": ("34402009", "Rectum"),
}
POLYP_OF_COLON = ("68496003", "Polyp of colon")
COLONOSCOPY = ("73761001", "Colonoscopy")


def field_code(code: str, *standard: Coding) -> CodeableConcept:
    display = REPORT_FIELDS[code]
    return CodeableConcept(coding=[*standard, Coding(system=REPORT_FIELD_SYSTEM, code=code, display=display)],
                           text=display)


def value_concept(table: str, code: str | None, extra_text: str = "", *standard: Coding) -> CodeableConcept | None:
    system, choices = VALUE_SYSTEMS[table]
    label = v.label(choices, code)
    text = "; ".join(p for p in (label, extra_text) if p)
    if not text:
        return None
    codings = [*standard] + ([Coding(system=system, code=code, display=label)] if code else [])
    return CodeableConcept(coding=codings or None, text=text)


def body_site(procedure_type: str, code: str | None) -> CodeableConcept | None:
    if not code:
        return None
    label = location_label(procedure_type, code)
    codings = []
    known = BODY_SITE_SNOMED.get(code) if procedure_type == "colonoscopy" else None
    if known:
        codings.append(Coding(system=SNOMED, code=known[0], display=known[1]))
    codings.append(Coding(system=BODY_SITE_SYSTEM, code=code, display=label))
    return CodeableConcept(coding=codings, text=label)


def _quantity(value: float, unit: str) -> Quantity:
    return Quantity(value=value, unit=unit, system=UCUM, code=unit)


def add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class StructuredFhir:
    """Builds the structured report's resources for one export (see ``exports.fhir``)."""

    def __init__(self, *, view: StructuredView, session, common: dict, refs: dict, issued: str,
                 landmark_media: dict[str, str], procedure_date):
        self.view = view
        self.session = session
        self.common = common  # subject, encounter
        self.refs = refs
        self.issued = issued
        self.landmark_media = landmark_media  # mark kind -> Media urn
        self.procedure_date = procedure_date
        self.status = "final" if view.is_final else "preliminary"
        self.observations: list[tuple[str, Observation]] = []

    def resource_id(self, key: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.session.pk}/{key}"))

    def observe(self, key: str, code: CodeableConcept, *, note: str = "", **values) -> Observation:
        resource_id = self.resource_id(key)
        observation = Observation(
            id=resource_id,
            identifier=[Identifier(system=f"{LOCAL}/NamingSystem/report-field", value=f"{self.session.pk}/{key}")],
            status=self.status,
            category=[CodeableConcept(coding=[Coding(system=OBSERVATION_CATEGORY, code="procedure",
                                                     display="Procedure")])],
            code=code,
            partOf=[Reference(reference=self.refs["procedure"], type="Procedure")],
            issued=self.issued,
            performer=[Reference(display=self.session.clinician.get_username())],
            note=[Annotation(text=note)] if note else None,
            **self.common,
            **{k: val for k, val in values.items() if val is not None},
        )
        self.observations.append((f"urn:uuid:{resource_id}", observation))
        return observation

    @staticmethod
    def component(code: str, **value) -> ObservationComponent | None:
        value = {k: val for k, val in value.items() if val not in (None, "")}
        return ObservationComponent(code=field_code(code), **value) if value else None

    @staticmethod
    def components(*items) -> list[ObservationComponent] | None:
        kept = [c for c in items if c is not None]
        return kept or None

    # Sections ----------------------------------------------------------------------------

    def build(self) -> list[tuple[str, Observation]]:
        report = self.view.report
        if report is None:
            return []
        self._common(report)
        pt = self.view.procedure_type
        if pt == "colonoscopy":
            self._colonoscopy(report)
        elif pt == "upper_gi":
            self._upper_gi(report)
        elif pt == "bronchoscopy":
            self._bronchoscopy(report)
        return self.observations

    def _common(self, r) -> None:
        if r.indication_kind or r.indication_text:
            self.observe("indication", field_code("indication"),
                         valueCodeableConcept=value_concept("indication", r.indication_kind, r.indication_text))
        if r.asa_class:
            snomed = ASA_SNOMED[r.asa_class]
            self.observe("asa-class", field_code("asa-class", Coding(system=SNOMED, code=ASA_OBSERVABLE[0],
                                                                     display=ASA_OBSERVABLE[1])),
                         valueCodeableConcept=value_concept("asa", r.asa_class, "",
                                                            Coding(system=SNOMED, code=snomed[0], display=snomed[1])))
        if r.sedation_level or r.sedation_agents:
            self.observe("sedation", field_code("sedation"),
                         valueCodeableConcept=value_concept("sedation", r.sedation_level, r.sedation_agents))
        if r.complications or r.complications_text:
            self.observe("complications", field_code("complications"),
                         component=self.components(*(
                             self.component("complication", valueCodeableConcept=value_concept("complication", c))
                             for c in r.complications)),
                         valueString=", ".join(v.label(v.COMPLICATIONS, c) for c in r.complications) or None,
                         note=r.complications_text)

    def _colonoscopy(self, r) -> None:
        pt = "colonoscopy"
        if r.extent:
            standard = ([Coding(system=SNOMED, code=BODY_SITE_SNOMED[r.extent][0],
                                display=BODY_SITE_SNOMED[r.extent][1])] if r.extent in BODY_SITE_SNOMED else [])
            landmarks = list(self.landmark_media.values())
            self.observe(
                "extent", field_code("extent"),
                valueCodeableConcept=value_concept("colon-extent", r.extent, "", *standard),
                bodySite=body_site(pt, r.extent) if r.extent in BODY_SITE_SNOMED else body_site(
                    pt, r.incomplete_location),
                component=self.components(
                    self.component("cecal-intubation", valueBoolean=r.cecum_reached),
                    self.component("incomplete-location", valueCodeableConcept=body_site(pt, r.incomplete_location))
                    if r.extent == "incomplete" else None,
                    self.component("incomplete-reason", valueCodeableConcept=value_concept(
                        "incomplete-reason", r.incomplete_reason, r.incomplete_text))
                    if r.extent == "incomplete" else None,
                ),
                derivedFrom=[Reference(reference=urn, type="Media") for urn in landmarks] or None,
            )
        segments = []
        for segment, label in v.BBPS_SEGMENTS:
            score = getattr(r, f"bbps_{segment}")
            if score is None:
                continue
            obs = self.observe(f"bbps-{segment}", field_code(f"bbps-{segment}"), valueInteger=score,
                               bodySite=CodeableConcept(text=label))
            segments.append(f"urn:uuid:{obs.id}")
        if r.bbps_total is not None:
            adequate = "Adequate (every segment scored 2 or more)" if r.bbps_adequate else \
                "Inadequate (a segment scored below 2)"
            self.observe("bbps-total", field_code("bbps-total"), valueInteger=r.bbps_total,
                         interpretation=[CodeableConcept(text=adequate)],
                         hasMember=[Reference(reference=u, type="Observation") for u in segments] or None)
        w = self.view.withdrawal
        if w is not None and w.seconds is not None:
            verdict = "meets" if w.meets_target else "is below"
            self.observe("withdrawal-time", field_code("withdrawal-time"),
                         valueQuantity=_quantity(round(w.seconds / 60, 2), "min"),
                         interpretation=[CodeableConcept(text=f"{format_duration(w.seconds)}, {verdict} the "
                                                              f"{v.WITHDRAWAL_TARGET_S // 60} min target")],
                         note="From the 'Cecum reached' and 'Scope out' marks on the timeline.")
        for n, p in enumerate(r.polyps, start=1):
            self.observe(
                f"polyp-{p.id or n}",
                CodeableConcept(coding=[Coding(system=SNOMED, code=POLYP_OF_COLON[0], display=POLYP_OF_COLON[1]),
                                        Coding(system=REPORT_FIELD_SYSTEM, code="polyp",
                                               display=REPORT_FIELDS["polyp"])],
                                text=f"Polyp {n}"),
                bodySite=body_site(pt, p.location),
                component=self.components(
                    self.component("polyp-size", valueQuantity=_quantity(p.size_mm, "mm") if p.size_mm is not None
                                   else None),
                    self.component("paris-class", valueCodeableConcept=value_concept("paris", p.paris)),
                    self.component("nice-class", valueCodeableConcept=value_concept("nice", p.nice)),
                    self.component("location", valueCodeableConcept=body_site(pt, p.location)),
                    self.component("resection", valueCodeableConcept=value_concept("resection", p.resection)),
                    self.component("retrieved", valueBoolean=p.retrieved),
                    self.component("specimen-jar", valueString=p.jar),
                    self.component("histology", valueCodeableConcept=value_concept("histology", p.histology)),
                ),
            )

    def _upper_gi(self, r) -> None:
        pt = "upper_gi"
        if r.extent:
            self.observe("extent", field_code("extent"),
                         valueCodeableConcept=value_concept("upper-gi-extent", r.extent))
        if r.barrett is not None:
            self.observe("barrett", field_code("barrett"), valueBoolean=r.barrett)
        if r.prague_c_cm is not None or r.prague_m_cm is not None:
            self.observe("prague", field_code("prague"), component=self.components(
                self.component("prague-c", valueQuantity=_quantity(r.prague_c_cm, "cm")
                               if r.prague_c_cm is not None else None),
                self.component("prague-m", valueQuantity=_quantity(r.prague_m_cm, "cm")
                               if r.prague_m_cm is not None else None),
            ))
        if r.la_grade:
            self.observe("la-grade", field_code("la-grade"), valueCodeableConcept=value_concept("la-grade", r.la_grade))
        for n, u in enumerate(r.ulcers, start=1):
            self.observe(f"ulcer-{u.id or n}", field_code("ulcer"), bodySite=body_site(pt, u.location),
                         component=self.components(
                             self.component("forrest-class", valueCodeableConcept=value_concept("forrest", u.forrest)),
                             self.component("ulcer-size", valueQuantity=_quantity(u.size_mm, "mm")
                                            if u.size_mm is not None else None)))
        for n, b in enumerate(r.biopsies, start=1):
            self.observe(f"biopsy-{b.id or n}", field_code("biopsy"), bodySite=body_site(pt, b.site),
                         valueBoolean=True,
                         component=self.components(self.component("biopsy-purpose", valueString=b.purpose),
                                                   self.component("specimen-jar", valueString=b.jar)))

    def _bronchoscopy(self, r) -> None:
        pt = "bronchoscopy"
        if r.segments_examined:
            self.observe("segments-examined", field_code("segments-examined"), component=self.components(*(
                self.component("segment", valueCodeableConcept=body_site(pt, s)) for s in r.segments_examined)))
        for n, f in enumerate(r.segment_findings, start=1):
            if f.segment or f.text:
                self.observe(f"segment-finding-{f.id or n}", field_code("segment-finding"),
                             bodySite=body_site(pt, f.segment), valueString=f.text or None)
        for n, s in enumerate(r.samples, start=1):
            self.observe(f"sample-{s.id or n}", field_code("sample"), bodySite=body_site(pt, s.site),
                         valueCodeableConcept=value_concept("sample-kind", s.kind),
                         component=self.components(self.component("specimen-jar", valueString=s.jar),
                                                   self.component("sample-note", valueString=s.text)))

    # Surveillance ------------------------------------------------------------------------

    def care_plan(self) -> tuple[str, CarePlan] | None:
        """The surveillance interval as a CarePlan.

        A CarePlan rather than a ServiceRequest: the interval is a plan for care years ahead,
        not an order anyone can act on today (the order is placed when it falls due), and
        EHRs read it as the patient's plan. ``activity.detail`` (R4) carries the colonoscopy,
        when (``scheduledTiming``: from the procedure date plus the interval, with the
        interval in words) or ``doNotPerform`` for "no surveillance colonoscopy".
        Signed: active plan; before sign-off: a draft proposal.
        """
        report = self.view.report
        if self.view.procedure_type != "colonoscopy" or report is None:
            return None
        s = report.surveillance
        if s.chosen_months is None:
            return None
        chosen = interval_text(s.chosen_months)
        notes = []
        if s.suggested_months is not None or s.suggested_rule:
            suggested = "; ".join(p for p in (interval_text(s.suggested_months), s.suggested_rule) if p)
            notes.append(f"Suggested: {suggested}.")
            if s.suggested_months is not None:
                notes.append("The clinician changed the suggested interval." if s.chosen_months != s.suggested_months
                             else "The clinician kept the suggested interval.")
        notes.append("Confirmed by the clinician." if s.confirmed else "Not confirmed by the clinician yet.")
        if s.note:
            notes.append(f"Note: {s.note}")
        timing = None
        if s.chosen_months:
            when = f"in {interval_span(s.chosen_months)}"
            due = add_months(self.procedure_date.date(), s.chosen_months) if self.procedure_date else None
            timing = Timing(
                repeat=TimingRepeat(boundsPeriod=Period(start=due.isoformat())) if due else None,
                code=CodeableConcept(text=f"{when} from the procedure" + (f" (due {due.isoformat()})" if due else "")),
            )
        resource_id = self.resource_id("surveillance")
        plan = CarePlan(
            id=resource_id,
            identifier=[Identifier(system=f"{LOCAL}/NamingSystem/report-field",
                                   value=f"{self.session.pk}/surveillance")],
            status="active" if self.view.is_final else "draft",
            intent="plan" if self.view.is_final else "proposal",
            title="Surveillance after colonoscopy",
            description=chosen,
            subject=self.common["subject"],
            encounter=self.common.get("encounter"),
            created=self.issued,
            author=Reference(display=self.session.clinician.get_username()),
            supportingInfo=[Reference(reference=self.refs["report"], type="DiagnosticReport")],
            activity=[CarePlanActivity(detail=CarePlanActivityDetail(
                kind="ServiceRequest",
                code=CodeableConcept(coding=[Coding(system=SNOMED, code=COLONOSCOPY[0], display=COLONOSCOPY[1])],
                                     text="Surveillance colonoscopy"),
                status="not-started",
                doNotPerform=True if s.chosen_months == 0 else None,
                scheduledTiming=timing,
                reasonReference=[Reference(reference=self.refs["report"], type="DiagnosticReport")],
                description=chosen,
            ))],
            note=[Annotation(text=" ".join(notes))],
        )
        return f"urn:uuid:{resource_id}", plan
