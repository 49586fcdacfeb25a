"""The structured report as an HTML form: which fields each procedure type shows, with
their labels, and how a submitted form becomes report data (``reporting.schema``).

Input names are the schema's own paths (``bbps_left``, ``polyps.2.size_mm``), so the
per-field messages of ``schema.ReportDataError`` land on the input they are about without
a translation table. Values are coerced here (a form only sends strings) and the schema
validates them; the services store them. Rows (polyps, ulcers, ...) may arrive with gaps
in their numbers (the page's script removes rows in place): they are renumbered in order,
and the page is rendered again from the renumbered data, so messages and inputs agree.

Nothing here writes: the view hands the data to ``reporting.services.report_update``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import labels as field_labels
from . import vocabulary as v

YES_NO: v.Choices = (("yes", "Yes"), ("no", "No"))


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    widget: str  # select, radio, number, text, textarea, checkboxes, yesno
    choices: v.Choices = ()
    integer: bool = False  # a select or number whose value is stored as an int
    nullable: bool = True  # an empty select stores None (False: the key is left to its default)
    step: str = "any"
    min: str = ""
    max: str = ""
    help: str = ""
    wide: bool = False


@dataclass(frozen=True)
class Rows:
    name: str
    label: str
    singular: str
    fields: tuple[Field, ...]
    # Kept as they are (hidden inputs): the row's id and the finding it was prefilled from.
    hidden: tuple[str, ...] = ("id", "finding_id")


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    fields: tuple[Field, ...] = ()
    rows: Rows | None = None
    help: str = ""


def _common_head() -> tuple[Section, ...]:
    return (
        Section("indication", "Indication", (
            Field("indication_kind", "Indication", "radio", v.INDICATION_KINDS),
            Field("indication_text", "Indication details", "text", wide=True,
                  help="For example the symptom, the earlier finding or the referral question."),
        )),
        Section("patient", "Patient and sedation", (
            Field("asa_class", "ASA class", "select", v.ASA_CLASSES),
            Field("sedation_level", "Sedation", "select", v.SEDATION_LEVELS),
            Field("sedation_agents", "Sedation agents", "text"),
        )),
    )


def _common_tail() -> tuple[Section, ...]:
    return (
        Section("complications", "Complications", (
            Field("complications", "Complications", "checkboxes", v.COMPLICATIONS),
            Field("complications_text", "Complication details", "text", wide=True),
        )),
        Section("conclusion", "Impression and recommendations", (
            Field("impression", "Impression", "textarea", wide=True),
            Field("recommendations", "Recommendations", "textarea", wide=True),
        )),
    )


def _colonoscopy() -> tuple[Section, ...]:
    where = v.location_choices("colonoscopy")
    bbps = tuple(Field(f"bbps_{code}", f"Bowel preparation (BBPS) {text.lower()}", "select", v.BBPS_SCORES,
                       integer=True) for code, text in v.BBPS_SEGMENTS)
    return (
        *_common_head(),
        Section("extent", "Extent reached", (
            Field("extent", "Extent reached", "radio", v.COLON_EXTENTS),
            Field("incomplete_location", "Where the examination stopped", "select", where,
                  help="Only when the examination was incomplete."),
            Field("incomplete_reason", "Why the examination stopped", "select", v.INCOMPLETE_REASONS),
            Field("incomplete_text", "Incomplete examination details", "text", wide=True),
        )),
        Section("bbps", "Bowel preparation (Boston Bowel Preparation Scale)", bbps,
                help="0 to 3 per segment; adequate when every segment scores 2 or more."),
        Section("polyps", "Polyps", rows=Rows("polyps", "Polyps", "polyp", (
            Field("size_mm", "Size (mm)", "number", min="0", max="500", step="0.5"),
            Field("location", "Location", "select", where),
            Field("paris", "Paris class", "select", v.PARIS_CLASSES),
            Field("nice", "NICE class", "select", v.NICE_CLASSES),
            Field("resection", "Resection", "select", v.RESECTION_METHODS),
            Field("retrieved", "Retrieved", "yesno", YES_NO),
            Field("jar", "Specimen jar", "text"),
            Field("histology", "Histology", "select", v.POLYP_HISTOLOGY, nullable=False),
        ))),
        *_common_tail(),
    )


def _upper_gi() -> tuple[Section, ...]:
    where = v.location_choices("upper_gi")
    return (
        *_common_head(),
        Section("extent", "Extent reached", (
            Field("extent", "Extent reached", "radio", v.UPPER_GI_EXTENTS,
                  help="The furthest part reached; the parts before it were examined on the way."),
        )),
        Section("esophagus", "Esophagus", (
            Field("barrett", "Barrett's esophagus", "yesno", YES_NO),
            Field("prague_c_cm", "Prague C (cm)", "number", min="0", max="25", step="0.5",
                  help="Circumferential extent."),
            Field("prague_m_cm", "Prague M (cm)", "number", min="0", max="25", step="0.5",
                  help="Maximum extent."),
            Field("la_grade", "Esophagitis (LA grade)", "select", v.LA_GRADES),
        )),
        Section("ulcers", "Ulcers", rows=Rows("ulcers", "Ulcers", "ulcer", (
            Field("location", "Location", "select", where),
            Field("forrest", "Forrest class", "select", v.FORREST_CLASSES),
            Field("size_mm", "Size (mm)", "number", min="0", max="500", step="0.5"),
        ))),
        Section("biopsies", "Biopsies", rows=Rows("biopsies", "Biopsies", "biopsy", (
            Field("site", "Site", "select", where),
            Field("purpose", "Purpose", "text"),
            Field("jar", "Specimen jar", "text"),
        ))),
        *_common_tail(),
    )


def _bronchoscopy() -> tuple[Section, ...]:
    where = v.location_choices("bronchoscopy")
    return (
        *_common_head(),
        Section("segments", "Segments examined", (
            Field("segments_examined", "Segments examined", "checkboxes", where),
        )),
        Section("segment_findings", "Findings by segment", rows=Rows("segment_findings", "Findings by segment",
                                                                       "segment finding", (
            Field("segment", "Segment", "select", where),
            Field("text", "Finding", "text"),
        ))),
        Section("samples", "BAL and biopsy sites", rows=Rows("samples", "Samples (BAL, biopsy, brushing)", "sample", (
            Field("kind", "Sample", "select", v.BRONCHO_SAMPLE_KINDS),
            Field("site", "Site", "select", where),
            Field("jar", "Specimen jar", "text"),
            Field("text", "Details", "text"),
        ), hidden=("id",))),
        *_common_tail(),
    )


SECTIONS = {
    "colonoscopy": _colonoscopy(),
    "upper_gi": _upper_gi(),
    "bronchoscopy": _bronchoscopy(),
    "other": (*_common_head(), *_common_tail()),
}


def sections(procedure_type: str) -> tuple[Section, ...]:
    return SECTIONS.get(procedure_type, SECTIONS["other"])


def labels(procedure_type: str) -> dict[str, str]:
    """Field name -> label, rows' fields as ``polyps.size_mm`` (for messages)."""
    out: dict[str, str] = {}
    for section in sections(procedure_type):
        for f in section.fields:
            out[f.name] = f.label
        if section.rows:
            for f in section.rows.fields:
                out[f"{section.rows.name}.{f.name}"] = f.label
    return out


def error_label(procedure_type: str, path: str) -> str:
    """``polyps.1.size_mm`` -> "Polyp 2 size (mm)": the names ``reporting.labels`` gives
    (the sign-off check and the API use the same)."""
    if path == "report":
        return "Report"
    return field_labels.field_label(procedure_type, path)


# --- From the submitted form to report data ------------------------------------------------

class FormValueError(ValueError):
    pass


def _coerce(f: Field, raw: str) -> Any:
    raw = (raw or "").strip()
    if f.widget == "yesno":
        return {"yes": True, "no": False}.get(raw)
    if f.widget in ("text", "textarea"):
        return raw
    if raw == "":
        return None
    if f.widget == "number" or f.integer:
        try:
            number = float(raw.replace(",", "."))
        except ValueError:
            raise FormValueError("Enter a number.") from None
        if f.integer:
            if number != int(number):
                raise FormValueError("Enter a whole number.")
            return int(number)
        return number
    return raw


def _put(data: dict, f: Field, value: Any) -> None:
    if value is None and not f.nullable:
        data.pop(f.name, None)  # the schema's default ("pending" histology)
    else:
        data[f.name] = value


_ROW_KEY = re.compile(r"^(?P<rows>[a-z_]+)\.(?P<n>\d{1,4})\.(?P<field>[a-z_]+)$")


def parse_post(procedure_type: str, post, stored: dict | None) -> tuple[dict, dict[str, str]]:
    """(data, errors) from a submitted form. Starts from the stored report, so what the form
    does not carry (the confirmed surveillance interval, the schema version) is kept; a row
    named in ``remove_row`` (``polyps.3``) is left out. ``errors`` holds values that are not
    even numbers; the schema judges the rest."""
    data: dict[str, Any] = dict(stored or {})
    errors: dict[str, str] = {}
    remove = post.get("remove_row", "")
    for section in sections(procedure_type):
        for f in section.fields:
            if f.widget == "checkboxes":
                data[f.name] = post.getlist(f.name)  # the schema refuses a code outside its table
                continue
            try:
                _put(data, f, _coerce(f, post.get(f.name, "")))
            except FormValueError as exc:
                errors[f.name] = str(exc)
                data.pop(f.name, None)
        if section.rows:
            data[section.rows.name], row_errors = _parse_rows(section.rows, post, remove)
            errors.update(row_errors)
    return data, errors


def _parse_rows(rows: Rows, post, remove: str) -> tuple[list[dict], dict[str, str]]:
    numbers: set[int] = set()
    for key in post.keys():
        match = _ROW_KEY.match(key)
        if match and match["rows"] == rows.name:
            numbers.add(int(match["n"]))
    out: list[dict] = []
    errors: dict[str, str] = {}
    for n in sorted(numbers):
        if remove == f"{rows.name}.{n}":
            continue
        row: dict[str, Any] = {}
        index = len(out)
        for name in rows.hidden:
            value = post.get(f"{rows.name}.{n}.{name}", "").strip()
            if value:
                row[name] = value
        for f in rows.fields:
            try:
                _put(row, f, _coerce(f, post.get(f"{rows.name}.{n}.{f.name}", "")))
            except FormValueError as exc:
                errors[f"{rows.name}.{index}.{f.name}"] = str(exc)
        out.append(row)
    return out, errors


def with_blank_row(procedure_type: str, data: dict, rows_name: str) -> dict:
    """``data`` with one empty row more in ``rows_name`` (the no-script "Add" button)."""
    if any(s.rows and s.rows.name == rows_name for s in sections(procedure_type)):
        data = {**data, rows_name: [*data.get(rows_name, []), {}]}
    return data


# --- From report data to what the template renders -----------------------------------------

@dataclass
class BoundField:
    spec: Field
    name: str
    value: str = ""
    values: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def options(self) -> list[dict]:
        chosen = set(self.values) if self.spec.widget == "checkboxes" else {self.value}
        return [{"value": code, "label": text, "selected": code in chosen} for code, text in self.spec.choices]

    @property
    def value_label(self) -> str:
        """The value as a person reads it (read-only pages)."""
        if self.spec.widget == "checkboxes":
            return ", ".join(v.label(self.spec.choices, code) for code in self.values)
        if self.spec.choices:
            return v.label(self.spec.choices, self.value)
        return self.value


def _text(value: Any, f: Field) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bind(procedure_type: str, data: dict, errors: dict[str, str]) -> list[dict]:
    """The form's sections with each field's current value and message."""
    out = []
    for section in sections(procedure_type):
        fields = []
        for f in section.fields:
            value = data.get(f.name)
            if f.widget == "checkboxes":
                fields.append(BoundField(f, f.name, values=[str(x) for x in value or []], error=errors.get(f.name, "")))
            else:
                fields.append(BoundField(f, f.name, _text(value, f), error=errors.get(f.name, "")))
        entry: dict[str, Any] = {"key": section.key, "title": section.title, "help": section.help, "fields": fields}
        if section.rows:
            rows = section.rows
            bound_rows = []
            for i, row in enumerate(data.get(rows.name) or []):
                prefix = f"{rows.name}.{i}"
                bound_rows.append({
                    "index": i, "prefix": prefix, "number": i + 1,
                    "hidden": [{"name": f"{prefix}.{h}", "value": row.get(h) or ""} for h in rows.hidden],
                    "from_finding": bool(row.get("finding_id")),
                    "error": errors.get(prefix, ""),
                    "fields": [BoundField(f, f"{prefix}.{f.name}", _text(row.get(f.name), f),
                                          error=errors.get(f"{prefix}.{f.name}", "")) for f in rows.fields],
                })
            entry["rows"] = {
                "name": rows.name, "label": rows.label, "singular": rows.singular, "items": bound_rows,
                # The <template> the script clones for a new row; "__i__" becomes its number.
                "blank": {"prefix": f"{rows.name}.__i__",
                          "hidden": [{"name": f"{rows.name}.__i__.{h}", "value": ""} for h in rows.hidden],
                          "fields": [BoundField(f, f"{rows.name}.__i__.{f.name}") for f in rows.fields]},
            }
        out.append(entry)
    return out
