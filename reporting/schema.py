"""What a structured report holds, per procedure type (pydantic models).

``StructuredReport.data`` is the JSON form of one of these models. Every field may be empty
while the clinician works on the report (a draft is always storable); what must be filled in
before signing is decided by ``reporting.validation``. Values are validated here, strictly:
a code outside its table, a size out of range or an unknown key is refused with the field
named, so what is stored is always readable by the report, the exports and QA metrics.

Times live on ``TimelineMark`` rows, not here: withdrawal time and the cecal landmarks' key
frames come from the timeline, where they were marked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from analysis.engine.schemas import LOCATIONS

from . import vocabulary as v

SCHEMA_VERSION = 1


def _one_of(table: v.Choices | tuple[str, ...]):
    allowed = table if table and isinstance(table[0], str) else v.codes(table)  # type: ignore[arg-type]
    return Literal[tuple(allowed)]  # type: ignore[valid-type]


# Free text that ends up in the PDF, report.txt and FHIR: no control characters other than
# tab and line breaks (the same rule as medvision.text_rules), bounded.
_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
ShortText = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$", strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(max_length=4000, pattern=_CONTROL, strip_whitespace=True)]
Jar = Annotated[str, StringConstraints(max_length=20, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$", strip_whitespace=True)]
RowId = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]
SizeMm = Annotated[float, Field(ge=0, le=500)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Surveillance(_Model):
    """The suggested interval (``reporting.surveillance``) as it stood when the clinician
    decided, and what they chose. ``chosen_months`` 0 means no surveillance colonoscopy."""

    suggested_months: int | None = Field(default=None, ge=0, le=120)
    suggested_rule: ShortText = ""
    chosen_months: int | None = Field(default=None, ge=0, le=120)
    confirmed: bool = False
    note: ShortText = ""


class _Common(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    indication_kind: _one_of(v.INDICATION_KINDS) | None = None
    indication_text: ShortText = ""
    asa_class: _one_of(v.ASA_CLASSES) | None = None
    sedation_level: _one_of(v.SEDATION_LEVELS) | None = None
    sedation_agents: ShortText = ""
    complications: list[_one_of(v.COMPLICATIONS)] = Field(default_factory=list, max_length=len(v.COMPLICATIONS))
    complications_text: ShortText = ""
    impression: LongText = ""
    recommendations: LongText = ""

    @field_validator("complications")
    @classmethod
    def _none_is_alone(cls, value: list[str]) -> list[str]:
        if "none" in value and len(value) > 1:
            raise ValueError("'None' cannot be combined with a complication.")
        return list(dict.fromkeys(value))


class Polyp(_Model):
    id: RowId = ""
    finding_id: RowId | None = None  # the confirmed AI (or clinician) finding it came from
    size_mm: SizeMm | None = None
    paris: _one_of(v.PARIS_CLASSES) | None = None
    nice: _one_of(v.NICE_CLASSES) | None = None
    location: _one_of(LOCATIONS["colonoscopy"]) | None = None
    resection: _one_of(v.RESECTION_METHODS) | None = None
    retrieved: bool | None = None
    jar: Jar = ""
    histology: _one_of(v.POLYP_HISTOLOGY) = "pending"


class ColonoscopyReport(_Common):
    extent: _one_of(v.COLON_EXTENTS) | None = None
    incomplete_location: _one_of(LOCATIONS["colonoscopy"]) | None = None
    incomplete_reason: _one_of(v.INCOMPLETE_REASONS) | None = None
    incomplete_text: ShortText = ""
    bbps_right: int | None = Field(default=None, ge=0, le=3)
    bbps_transverse: int | None = Field(default=None, ge=0, le=3)
    bbps_left: int | None = Field(default=None, ge=0, le=3)
    polyps: list[Polyp] = Field(default_factory=list, max_length=100)
    surveillance: Surveillance = Field(default_factory=Surveillance)

    @property
    def bbps_total(self) -> int | None:
        scores = (self.bbps_right, self.bbps_transverse, self.bbps_left)
        return None if any(s is None for s in scores) else sum(scores)  # type: ignore[arg-type]

    @property
    def bbps_adequate(self) -> bool | None:
        scores = (self.bbps_right, self.bbps_transverse, self.bbps_left)
        if any(s is None for s in scores):
            return None
        return all(s >= v.BBPS_ADEQUATE_SEGMENT_SCORE for s in scores)  # type: ignore[operator]

    @property
    def cecum_reached(self) -> bool | None:
        return None if self.extent is None else self.extent in v.CECUM_REACHED_EXTENTS


class Ulcer(_Model):
    id: RowId = ""
    finding_id: RowId | None = None
    location: _one_of(LOCATIONS["upper_gi"]) | None = None
    forrest: _one_of(v.FORREST_CLASSES) | None = None
    size_mm: SizeMm | None = None


class Biopsy(_Model):
    id: RowId = ""
    finding_id: RowId | None = None
    site: _one_of(LOCATIONS["upper_gi"]) | None = None
    purpose: ShortText = ""
    jar: Jar = ""


class UpperGIReport(_Common):
    # The furthest part reached (the others before it were examined on the way).
    extent: _one_of(v.UPPER_GI_EXTENTS) | None = None
    barrett: bool | None = None
    prague_c_cm: float | None = Field(default=None, ge=0, le=25)
    prague_m_cm: float | None = Field(default=None, ge=0, le=25)
    la_grade: _one_of(v.LA_GRADES) | None = None
    ulcers: list[Ulcer] = Field(default_factory=list, max_length=50)
    biopsies: list[Biopsy] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _prague(self) -> "UpperGIReport":
        c, m = self.prague_c_cm, self.prague_m_cm
        if c is not None and m is not None and m < c:
            raise ValueError("Prague M (maximum extent) cannot be shorter than C (circumferential extent).")
        return self


class SegmentFinding(_Model):
    id: RowId = ""
    finding_id: RowId | None = None
    segment: _one_of(LOCATIONS["bronchoscopy"]) | None = None
    text: ShortText = ""


class BronchoSample(_Model):
    id: RowId = ""
    kind: _one_of(v.BRONCHO_SAMPLE_KINDS) | None = None
    site: _one_of(LOCATIONS["bronchoscopy"]) | None = None
    jar: Jar = ""
    text: ShortText = ""


class BronchoscopyReport(_Common):
    segments_examined: list[_one_of(LOCATIONS["bronchoscopy"])] = Field(default_factory=list, max_length=20)
    segment_findings: list[SegmentFinding] = Field(default_factory=list, max_length=50)
    samples: list[BronchoSample] = Field(default_factory=list, max_length=50)

    @field_validator("segments_examined")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class OtherReport(_Common):
    pass


REPORT_MODELS: dict[str, type[_Common]] = {
    "colonoscopy": ColonoscopyReport,
    "upper_gi": UpperGIReport,
    "bronchoscopy": BronchoscopyReport,
    "other": OtherReport,
}


class ReportDataError(ValueError):
    """Refused report data, with one message per field (``{"polyps.0.size_mm": "..."}``)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def report_model(procedure_type: str) -> type[_Common]:
    return REPORT_MODELS.get(procedure_type, OtherReport)


def parse(procedure_type: str, data: dict[str, Any] | None) -> _Common:
    """The typed report from stored or submitted JSON; ``ReportDataError`` when invalid."""
    try:
        return report_model(procedure_type).model_validate(data or {})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "report"
            errors.setdefault(field, error["msg"])
        raise ReportDataError(errors) from None


def empty(procedure_type: str) -> dict[str, Any]:
    return report_model(procedure_type)().model_dump(mode="json")
