"""Output schemas: what the model may say about a frame, per procedure type.

One source of truth for three consumers:

* the pydantic models validate every answer (grammar-forced, remote or parsed from text);
* ``json_schema_for`` feeds the OpenAI ``response_format`` and, through
  ``answer_grammar``, the grammar that forces the local model's answers;
* the enum tuples give the Django side its choices.

Three kinds of answer (``OUTPUT_KINDS``):

* ``frame``: the full answer for a recorded frame (label, description, next step);
* ``live``: the compact answer for a live frame - category, location, risk, confidence as
  an integer 0-100, optional size in whole millimetres and a short label, no prose - so
  that a live answer costs a few dozen decoding steps, not hundreds;
* ``clarify``: the answer to a clinician's question about one frame.

Why every string carries a character pattern *and* a length: the pattern
``[ -!#-[\\]-~]`` admits printable ASCII except ``"`` and ``\\``. That rules out escape
sequences, control characters and multi-byte characters, so one character is one byte
and - since every non-special token of a byte-fallback tokenizer decodes to at least one
byte - one character costs at most one token. With every list bounded too, the longest
valid answer has a known size in characters, which bounds its size in tokens for any
such tokenizer (MedGemma's included). ``MAX_NEW_TOKENS`` is chosen from that bound and a
test checks it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

PROCEDURE_TYPES: tuple[str, ...] = ("colonoscopy", "upper_gi", "bronchoscopy", "other")

RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")  # lowest first
# For "the highest risk" and for sorting; every app ranks risks with this one table.
RISK_RANK: dict[str, int] = {risk: rank for rank, risk in enumerate(RISK_LEVELS, start=1)}
# Highest first: how summaries, reports and the voice copilot list them.
RISKS_HIGHEST_FIRST: tuple[str, ...] = tuple(reversed(RISK_LEVELS))

IMAGE_ADEQUACY: tuple[str, ...] = (
    "adequate",
    "inadequate_blur",
    "inadequate_exposure",
    "inadequate_obscured",
)

# "undetermined" is in every location list: a single frame often does not show where the
# scope is, and a forced guess would be worse than saying so.
LOCATIONS: dict[str, tuple[str, ...]] = {
    # Minimal Standard Terminology (MST) colon segments.
    "colonoscopy": (
        "terminal_ileum",
        "cecum",
        "ascending_colon",
        "hepatic_flexure",
        "transverse_colon",
        "splenic_flexure",
        "descending_colon",
        "sigmoid_colon",
        "rectum",
        "anus",
        "undetermined",
    ),
    "upper_gi": (
        "upper_esophagus",
        "middle_esophagus",
        "lower_esophagus",
        "gastroesophageal_junction",
        "gastric_cardia",
        "gastric_fundus",
        "gastric_body",
        "gastric_antrum",
        "pylorus",
        "duodenal_bulb",
        "second_part_of_duodenum",
        "undetermined",
    ),
    "bronchoscopy": (
        "larynx",
        "trachea",
        "main_carina",
        "right_main_bronchus",
        "left_main_bronchus",
        "right_upper_lobe_bronchus",
        "bronchus_intermedius",
        "right_middle_lobe_bronchus",
        "right_lower_lobe_bronchus",
        "left_upper_lobe_bronchus",
        "lingular_bronchus",
        "left_lower_lobe_bronchus",
        "segmental_bronchus",
        "undetermined",
    ),
    "other": (
        "entry_site",
        "proximal",
        "middle",
        "distal",
        "target_site",
        "undetermined",
    ),
}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "colonoscopy": (
        "polyp",
        "mass",
        "ulcer",
        "bleeding",
        "inflammation",
        "diverticulum",
        "vascular_lesion",
        "foreign_body",
        "stricture",
        "hemorrhoid",
        "normal_mucosa",
        "other",
    ),
    "upper_gi": (
        "polyp",
        "mass",
        "ulcer",
        "erosion",
        "bleeding",
        "inflammation",
        "varices",
        "barrett_esophagus",
        "hiatal_hernia",
        "vascular_lesion",
        "foreign_body",
        "stricture",
        "normal_mucosa",
        "other",
    ),
    "bronchoscopy": (
        "mass",
        "inflammation",
        "bleeding",
        "secretions",
        "stenosis",
        "foreign_body",
        "vascular_lesion",
        "normal_mucosa",
        "other",
    ),
    "other": (
        "polyp",
        "mass",
        "ulcer",
        "bleeding",
        "inflammation",
        "vascular_lesion",
        "foreign_body",
        "stricture",
        "normal_mucosa",
        "other",
    ),
}

# Bounds. Changing one changes the worst-case answer length: re-run
# tests/engine/test_output_length.py, which recomputes it against MAX_NEW_TOKENS.
# Every bound is at most 128: the answer has to fit the model's 1024-token attention window
# together with a ~500-token prompt (see engine/fast), and long prose is not what a
# clinician reviewing a timeline reads anyway.
LABEL_MAX_CHARS = 60
DESCRIPTION_MAX_CHARS = 128
NEXT_STEP_MAX_CHARS = 120
ANSWER_MAX_CHARS = 128
LIVE_LABEL_MAX_CHARS = 40
MAX_FINDINGS = 3
SIZE_MM_MAX = 200
CONFIDENCE_PERCENT_MAX = 100

# Printable ASCII without '"' and '\' (see the module docstring for why).
TEXT_CHARS = r"[ -!#-\[\]-~]"

# Decimal places the grammar lets the model write for each non-integer number field: a
# confidence of 0.85, a size of 6.5 mm. Validation accepts any float in range; the grammar
# is stricter so that numbers stay short (and every answer's length stays bounded).
NUMBER_DECIMALS: dict[str, int] = {"confidence": 2, "size_mm": 1}

# Generation caps per output kind, each >= the worst-case token count of the longest
# valid answer of that kind (+1 for the stop token); see test_output_length.py.
MAX_NEW_TOKENS: dict[str, int] = {"frame": 1536, "live": 640, "clarify": 288}

OUTPUT_KINDS = ("frame", "live", "clarify")


def _text(max_chars: int, description: str) -> Any:
    return Field(
        min_length=1,
        max_length=max_chars,
        pattern=rf"^{TEXT_CHARS}{{1,{max_chars}}}$",
        description=description,
    )


class Finding(BaseModel):
    """One finding. Per-procedure subclasses narrow ``category`` and ``location`` to the
    procedure's enum; this base is what the rest of the app types against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Field order is generation order: what and where first, then how sure and how bad.
    category: str
    location: str
    risk: Literal["low", "medium", "high"]
    confidence: float = Field(ge=0, le=1)
    # Required-but-nullable rather than optional: strict JSON-schema modes (OpenAI, vLLM)
    # want every key present, and the grammar then has a fixed key order.
    size_mm: float | None = Field(ge=0, le=SIZE_MM_MAX)
    label: str = _text(LABEL_MAX_CHARS, "Short name of the finding.")
    description: str = _text(DESCRIPTION_MAX_CHARS, "What is visible in this frame.")
    suggested_next_step: str = _text(NEXT_STEP_MAX_CHARS, "A suggestion for the clinician.")

    def record_values(self) -> dict[str, Any]:
        """The values a recorded finding is made of (the same keys for every kind)."""
        return self.model_dump(mode="python")


class FrameAnalysis(BaseModel):
    """The structured answer for one frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_adequacy: Literal[
        "adequate", "inadequate_blur", "inadequate_exposure", "inadequate_obscured"
    ]
    no_finding: bool
    findings: list[Finding] = Field(max_length=MAX_FINDINGS)

    @model_validator(mode="after")
    def _no_finding_matches_findings(self) -> FrameAnalysis:
        _check_no_finding(self.no_finding, self.findings)
        return self


def _check_no_finding(no_finding: bool, findings: list) -> None:
    # The grammar enforces this too (json_schema_for splits the two cases with anyOf), so
    # a grammar-forced answer can never fail here.
    if no_finding and findings:
        raise ValueError("no_finding is true but findings are listed")
    if not no_finding and not findings:
        raise ValueError("no_finding is false but no findings are listed")


class LiveFinding(BaseModel):
    """One finding of a live frame: what, where, how bad, how sure - no prose, so that the
    answer is short. ``record_values`` gives the same fields as ``Finding``'s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    location: str
    risk: Literal["low", "medium", "high"]
    confidence: int = Field(ge=0, le=CONFIDENCE_PERCENT_MAX, description="Percent.")
    size_mm: int | None = Field(ge=0, le=SIZE_MM_MAX)
    label: str = _text(LIVE_LABEL_MAX_CHARS, "Short name of the finding.")

    def record_values(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "location": self.location,
            "risk": self.risk,
            "confidence": self.confidence / CONFIDENCE_PERCENT_MAX,
            "size_mm": None if self.size_mm is None else float(self.size_mm),
            "label": self.label,
            "description": "",
            "suggested_next_step": "",
        }


class LiveFrameAnalysis(BaseModel):
    """The compact structured answer for one live frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_adequacy: Literal[
        "adequate", "inadequate_blur", "inadequate_exposure", "inadequate_obscured"
    ]
    no_finding: bool
    findings: list[LiveFinding] = Field(max_length=MAX_FINDINGS)

    @model_validator(mode="after")
    def _no_finding_matches_findings(self) -> LiveFrameAnalysis:
        _check_no_finding(self.no_finding, self.findings)
        return self


class ClarifyAnswer(BaseModel):
    """Answer to a clinician's follow-up question about one frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: str = _text(ANSWER_MAX_CHARS, "Direct answer to the question.")
    confidence: float = Field(ge=0, le=1)
    relevant_category: str | None
    relevant_location: str | None
    image_adequacy: Literal[
        "adequate", "inadequate_blur", "inadequate_exposure", "inadequate_obscured"
    ]


def _check_procedure_type(procedure_type: str) -> None:
    if procedure_type not in PROCEDURE_TYPES:
        raise ValueError(
            f"Unknown procedure type {procedure_type!r}; use one of {', '.join(PROCEDURE_TYPES)}."
        )


def _literal(values: tuple[str, ...]) -> Any:
    return Literal[values]  # type: ignore[valid-type]


@cache
def finding_model(procedure_type: str) -> type[Finding]:
    _check_procedure_type(procedure_type)
    return create_model(
        f"{_class_prefix(procedure_type)}Finding",
        __base__=Finding,
        category=(_literal(CATEGORIES[procedure_type]), ...),
        location=(_literal(LOCATIONS[procedure_type]), ...),
    )


@cache
def frame_model(procedure_type: str) -> type[FrameAnalysis]:
    """The pydantic model that validates a frame answer for ``procedure_type``."""
    return create_model(
        f"{_class_prefix(procedure_type)}FrameAnalysis",
        __base__=FrameAnalysis,
        findings=(list[finding_model(procedure_type)], Field(max_length=MAX_FINDINGS)),
    )


@cache
def live_finding_model(procedure_type: str) -> type[LiveFinding]:
    _check_procedure_type(procedure_type)
    return create_model(
        f"{_class_prefix(procedure_type)}LiveFinding",
        __base__=LiveFinding,
        category=(_literal(CATEGORIES[procedure_type]), ...),
        location=(_literal(LOCATIONS[procedure_type]), ...),
    )


@cache
def live_model(procedure_type: str) -> type[LiveFrameAnalysis]:
    """The pydantic model that validates a live frame answer for ``procedure_type``."""
    return create_model(
        f"{_class_prefix(procedure_type)}LiveFrameAnalysis",
        __base__=LiveFrameAnalysis,
        findings=(list[live_finding_model(procedure_type)], Field(max_length=MAX_FINDINGS)),
    )


@cache
def clarify_model(procedure_type: str) -> type[ClarifyAnswer]:
    """The pydantic model that validates a clarify answer for ``procedure_type``."""
    _check_procedure_type(procedure_type)
    return create_model(
        f"{_class_prefix(procedure_type)}ClarifyAnswer",
        __base__=ClarifyAnswer,
        relevant_category=(_literal(CATEGORIES[procedure_type]) | None, ...),
        relevant_location=(_literal(LOCATIONS[procedure_type]) | None, ...),
    )


def output_model(procedure_type: str, kind: str = "frame") -> type[BaseModel]:
    if kind == "frame":
        return frame_model(procedure_type)
    if kind == "live":
        return live_model(procedure_type)
    if kind == "clarify":
        return clarify_model(procedure_type)
    raise ValueError(f"Unknown output kind {kind!r}; use one of {', '.join(OUTPUT_KINDS)}.")


def _class_prefix(procedure_type: str) -> str:
    return "".join(part.capitalize() for part in procedure_type.split("_"))


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref``s by their definitions: the frame schema is split into two anyOf
    branches below, and self-contained branches are simpler for every consumer."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                return resolve(copy.deepcopy(defs[name]))
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


@cache
def _json_schema_text(procedure_type: str, kind: str) -> str:
    model = output_model(procedure_type, kind)
    schema = _inline_refs(model.model_json_schema())
    if kind in ("frame", "live"):
        # JSON Schema cannot say "no_finding is true iff findings is empty" per field, so
        # the object is split into its two legal shapes. The grammar built from this then
        # cannot produce an answer that the model validator would reject.
        props = schema["properties"]
        with_findings = copy.deepcopy(schema)
        with_findings["properties"]["no_finding"] = {"const": False}
        with_findings["properties"]["findings"] = {
            **props["findings"],
            "minItems": 1,
            "maxItems": MAX_FINDINGS,
        }
        without_findings = copy.deepcopy(schema)
        without_findings["properties"]["no_finding"] = {"const": True}
        without_findings["properties"]["findings"] = {"type": "array", "maxItems": 0}
        for branch in (with_findings, without_findings):
            branch.pop("title", None)
        schema = {
            "title": schema.get("title", model.__name__),
            "anyOf": [without_findings, with_findings],
        }
    return json.dumps(schema, sort_keys=False)


def json_schema_for(procedure_type: str, kind: str = "frame") -> dict[str, Any]:
    """JSON Schema of the answer for ``procedure_type`` (``kind``: one of ``OUTPUT_KINDS``).

    A fresh copy each call, so callers may mutate it.
    """
    return json.loads(_json_schema_text(procedure_type, kind))


def json_schema_text(procedure_type: str, kind: str = "frame") -> str:
    """``json_schema_for`` as a stable string (the grammar cache key)."""
    return _json_schema_text(procedure_type, kind)


def max_new_tokens_for(kind: str) -> int:
    if kind not in MAX_NEW_TOKENS:
        raise ValueError(f"Unknown output kind {kind!r}; use one of {', '.join(OUTPUT_KINDS)}.")
    return MAX_NEW_TOKENS[kind]


def humanize(value: str) -> str:
    """Display label for an enum value: "sigmoid_colon" -> "Sigmoid colon"."""
    text = value.replace("_", " ")
    return text[:1].upper() + text[1:]


def choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """Django-style ``(value, label)`` pairs, e.g. ``choices(LOCATIONS["colonoscopy"])``."""
    return [(value, humanize(value)) for value in values]
