"""What people read for each field of the structured report: its label, and a value's text.

Shared by the sign-off check (``reporting.validation`` names missing fields by these
labels), ``selectors.report_view`` (pages, PDF, report.txt) and the API's field errors, so
a field is called the same everywhere. No code is ever shown: coded values go through
``vocabulary.label``.
"""

from __future__ import annotations

from typing import Any

from . import vocabulary as v

COMMON_FIELDS: tuple[tuple[str, str], ...] = (
    ("indication_kind", "Indication"),
    ("indication_text", "Indication details"),
    ("asa_class", "ASA class"),
    ("sedation_level", "Sedation"),
    ("sedation_agents", "Sedation agents"),
    ("complications", "Complications"),
    ("complications_text", "Complication details"),
    ("impression", "Impression"),
    ("recommendations", "Recommendations"),
)

TYPE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "colonoscopy": (
        ("extent", "Extent reached"),
        ("incomplete_location", "Where the examination stopped"),
        ("incomplete_reason", "Why the examination stopped"),
        ("incomplete_text", "Incomplete examination details"),
        ("bbps_right", "Bowel preparation (BBPS) right colon"),
        ("bbps_transverse", "Bowel preparation (BBPS) transverse colon"),
        ("bbps_left", "Bowel preparation (BBPS) left colon"),
    ),
    "upper_gi": (
        ("extent", "Extent reached"),
        ("barrett", "Barrett's esophagus"),
        ("prague_c_cm", "Prague C (cm)"),
        ("prague_m_cm", "Prague M (cm)"),
        ("la_grade", "Esophagitis (LA grade)"),
    ),
    "bronchoscopy": (
        ("segments_examined", "Segments examined"),
    ),
    "other": (),
}

# Row tables: field -> (table label, row label, ((column, label), ...)).
ROW_TABLES: dict[str, dict[str, tuple[str, str, tuple[tuple[str, str], ...]]]] = {
    "colonoscopy": {
        "polyps": ("Polyps", "Polyp", (
            ("size_mm", "Size (mm)"), ("location", "Location"), ("paris", "Paris class"), ("nice", "NICE class"),
            ("resection", "Resection"), ("retrieved", "Retrieved"), ("jar", "Specimen jar"),
            ("histology", "Histology"),
        )),
    },
    "upper_gi": {
        "ulcers": ("Ulcers", "Ulcer", (
            ("location", "Location"), ("forrest", "Forrest class"), ("size_mm", "Size (mm)"),
        )),
        "biopsies": ("Biopsies", "Biopsy", (
            ("site", "Site"), ("purpose", "Purpose"), ("jar", "Specimen jar"),
        )),
    },
    "bronchoscopy": {
        "segment_findings": ("Findings by segment", "Segment finding", (
            ("segment", "Segment"), ("text", "Finding"),
        )),
        "samples": ("Samples (BAL, biopsy, brushing)", "Sample", (
            ("kind", "Sample"), ("site", "Site"), ("jar", "Specimen jar"), ("text", "Details"),
        )),
    },
    "other": {},
}

SURVEILLANCE_LABEL = "Surveillance interval"
WITHDRAWAL_LABEL = "Withdrawal time"


def _procedure(procedure_type: str) -> str:
    return procedure_type if procedure_type in TYPE_FIELDS else "other"


def scalar_fields(procedure_type: str) -> tuple[tuple[str, str], ...]:
    """(field, label) of the report's single-value fields, in the order they are shown."""
    return COMMON_FIELDS + TYPE_FIELDS[_procedure(procedure_type)]


def row_tables(procedure_type: str):
    return ROW_TABLES[_procedure(procedure_type)]


def field_label(procedure_type: str, field: str) -> str:
    """The label of ``field`` ("polyps.0.size_mm" -> "Polyp 1 size (mm)"); unknown fields
    are humanized rather than shown as a code."""
    parts = field.split(".")
    labels = dict(scalar_fields(procedure_type))
    if parts[0] in labels and len(parts) == 1:
        return labels[parts[0]]
    tables = row_tables(procedure_type)
    if parts[0] in tables:
        table_label, row_label, columns = tables[parts[0]]
        if len(parts) >= 2 and parts[1].isdigit():
            row = f"{row_label} {int(parts[1]) + 1}"
            if len(parts) >= 3:
                column = dict(columns).get(parts[2]) or v.humanize(parts[2])
                return f"{row} {column[:1].lower()}{column[1:]}"
            return row
        return table_label
    if parts[0] == "surveillance":
        return SURVEILLANCE_LABEL if len(parts) == 1 else f"{SURVEILLANCE_LABEL}: {v.humanize(parts[-1])}"
    return v.humanize(" ".join(parts))


def code_tables(procedure_type: str) -> dict[str, v.Choices]:
    """Which vocabulary table labels each coded field of this procedure type's report (the
    one mapping: pages, validation messages and the exports' JSON labels use it)."""
    procedure = _procedure(procedure_type)
    locations = v.location_choices(procedure)
    return {
        "indication_kind": v.INDICATION_KINDS,
        "asa_class": v.ASA_CLASSES,
        "sedation_level": v.SEDATION_LEVELS,
        "complications": v.COMPLICATIONS,
        "extent": v.COLON_EXTENTS if procedure == "colonoscopy" else v.UPPER_GI_EXTENTS,
        "incomplete_location": locations,
        "incomplete_reason": v.INCOMPLETE_REASONS,
        "bbps_right": v.BBPS_SCORES,
        "bbps_transverse": v.BBPS_SCORES,
        "bbps_left": v.BBPS_SCORES,
        "la_grade": v.LA_GRADES,
        "segments_examined": locations,
        "paris": v.PARIS_CLASSES,
        "nice": v.NICE_CLASSES,
        "resection": v.RESECTION_METHODS,
        "histology": v.POLYP_HISTOLOGY,
        "location": locations,
        "site": locations,
        "segment": locations,
        "forrest": v.FORREST_CLASSES,
        "kind": v.BRONCHO_SAMPLE_KINDS,
    }


def _code_table(procedure_type: str, field: str) -> v.Choices | None:
    return code_tables(procedure_type).get(field)


def display(procedure_type: str, field: str, value: Any) -> str:
    """A field's value as text for a person ("" when empty). ``field`` is the bare name
    (a row column's name for row values)."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    table = _code_table(procedure_type, field)
    if isinstance(value, list):
        return ", ".join(display(procedure_type, field, item) for item in value)
    if table is not None:
        return v.label(table, str(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
