"""Turn answers that were *not* grammar-forced into the same validated objects.

A remote server may ignore ``response_format``, or a model may wrap its JSON in a
markdown fence, put prose around it, or answer in the reference system's text shape::

    **Finding:** Sessile polyp
    **Location:** Sigmoid
    **Risk Level:** Moderate
    **Suggested Next Step:** Consider polypectomy.

``parse_free_text`` tries, in order: JSON objects found in fences or prose (validated
as-is, then once more after normalising enum spellings such as "Sigmoid colon" or
"moderate"), then the ``Key: value`` text shape. The result is a schema-validated pydantic
object or a sentence saying why none could be made - never a half-made finding.

Defaults for what the text shape does not state (documented because they are visible in
the product): location "undetermined"; confidence 0 (meaning "not stated", so such a
finding never ranks above one with a stated confidence); size null; description = the
finding text; next step "Not stated"; image adequacy "adequate". A finding with no risk
level is rejected rather than guessed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .schemas import (
    ANSWER_MAX_CHARS,
    CATEGORIES,
    DESCRIPTION_MAX_CHARS,
    IMAGE_ADEQUACY,
    LABEL_MAX_CHARS,
    LOCATIONS,
    MAX_FINDINGS,
    NEXT_STEP_MAX_CHARS,
    SIZE_MM_MAX,
    humanize,
    output_model,
)

NOT_STATED = "Not stated"


@dataclass(frozen=True)
class ParseOutcome:
    value: BaseModel | None
    parsed_with: str | None  # "json", "json_extracted", "text_fallback" or None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.value is not None


# ------------------------------------------------------------------- vocabularies

RISK_ALIASES = {
    "low": "low",
    "minimal": "low",
    "mild": "low",
    "minor": "low",
    "low risk": "low",
    "medium": "medium",
    "moderate": "medium",
    "intermediate": "medium",
    "med": "medium",
    "medium risk": "medium",
    "moderate risk": "medium",
    "high": "high",
    "severe": "high",
    "urgent": "high",
    "significant": "high",
    "high risk": "high",
}

ADEQUACY_ALIASES = {
    "adequate": "adequate",
    "good": "adequate",
    "acceptable": "adequate",
    "sufficient": "adequate",
    "diagnostic": "adequate",
    "clear": "adequate",
    "inadequate blur": "inadequate_blur",
    "blur": "inadequate_blur",
    "blurry": "inadequate_blur",
    "blurred": "inadequate_blur",
    "motion blur": "inadequate_blur",
    "out of focus": "inadequate_blur",
    "inadequate exposure": "inadequate_exposure",
    "dark": "inadequate_exposure",
    "too dark": "inadequate_exposure",
    "overexposed": "inadequate_exposure",
    "underexposed": "inadequate_exposure",
    "poor lighting": "inadequate_exposure",
    "inadequate obscured": "inadequate_obscured",
    "obscured": "inadequate_obscured",
    "debris": "inadequate_obscured",
    "stool": "inadequate_obscured",
    "bubbles": "inadequate_obscured",
    "poor prep": "inadequate_obscured",
    "poor preparation": "inadequate_obscured",
}

# Extra spellings per enum value; each value's own spellings ("sigmoid_colon",
# "sigmoid colon") are added automatically. Applied only where the value exists for the
# procedure type.
CATEGORY_SYNONYMS = {
    "polyp": ("polyps", "polypoid lesion", "adenoma", "adenomatous polyp", "sessile serrated lesion"),
    "mass": ("tumor", "tumour", "neoplasm", "carcinoma", "cancer", "malignancy", "growth"),
    "ulcer": ("ulcers", "ulceration", "ulcerated lesion"),
    "erosion": ("erosions", "erosive change"),
    "bleeding": ("hemorrhage", "haemorrhage", "active bleeding", "blood", "bleed"),
    "inflammation": (
        "colitis",
        "esophagitis",
        "gastritis",
        "duodenitis",
        "bronchitis",
        "erythema",
        "inflamed mucosa",
        "edema",
    ),
    "diverticulum": ("diverticula", "diverticulosis", "diverticular disease"),
    "vascular_lesion": (
        "angioectasia",
        "angiodysplasia",
        "avm",
        "arteriovenous malformation",
        "vascular ectasia",
        "telangiectasia",
    ),
    "foreign_body": ("foreign object", "retained object"),
    "stricture": ("narrowing", "stenosis"),
    "stenosis": ("narrowing", "stricture", "airway narrowing", "obstruction"),
    "hemorrhoid": ("hemorrhoids", "haemorrhoid", "haemorrhoids"),
    "varices": ("varix", "esophageal varices", "gastric varices", "variceal"),
    "barrett_esophagus": ("barrett", "barretts", "barrett s esophagus", "barrett s oesophagus"),
    "hiatal_hernia": ("hiatus hernia",),
    "secretions": ("mucus", "sputum", "mucous plug", "mucus plug", "secretion"),
    "normal_mucosa": ("normal", "unremarkable", "unremarkable mucosa", "normal appearing mucosa"),
    "other": ("other finding",),
}

LOCATION_SYNONYMS = {
    "terminal_ileum": ("ileum", "ti", "neo terminal ileum"),
    "cecum": ("caecum", "appendiceal orifice", "ileocecal valve", "cecal"),
    "ascending_colon": ("ascending", "right colon"),
    "hepatic_flexure": ("hepatic",),
    "transverse_colon": ("transverse",),
    "splenic_flexure": ("splenic",),
    "descending_colon": ("descending", "left colon"),
    "sigmoid_colon": ("sigmoid",),
    "rectum": ("rectal", "rectal vault"),
    "anus": ("anal canal", "anal", "anorectal junction"),
    "upper_esophagus": ("proximal esophagus", "upper oesophagus", "cervical esophagus"),
    "middle_esophagus": ("mid esophagus", "mid oesophagus", "middle oesophagus"),
    "lower_esophagus": ("distal esophagus", "lower oesophagus", "distal oesophagus"),
    "gastroesophageal_junction": (
        "gej",
        "ge junction",
        "gastro oesophageal junction",
        "z line",
        "squamocolumnar junction",
    ),
    "gastric_cardia": ("cardia",),
    "gastric_fundus": ("fundus",),
    "gastric_body": ("body of stomach", "corpus", "stomach body"),
    "gastric_antrum": ("antrum", "antral"),
    "pylorus": ("pyloric channel", "pyloric"),
    "duodenal_bulb": ("bulb", "first part of duodenum", "d1"),
    "second_part_of_duodenum": (
        "second part of the duodenum",
        "d2",
        "descending duodenum",
        "second portion of duodenum",
    ),
    "larynx": ("vocal cords", "glottis", "laryngeal"),
    "main_carina": ("carina",),
    "right_main_bronchus": ("rmb", "right mainstem", "right mainstem bronchus", "right main stem bronchus"),
    "left_main_bronchus": ("lmb", "left mainstem", "left mainstem bronchus", "left main stem bronchus"),
    "right_upper_lobe_bronchus": ("rul", "right upper lobe"),
    "bronchus_intermedius": ("bi", "intermediate bronchus"),
    "right_middle_lobe_bronchus": ("rml", "right middle lobe"),
    "right_lower_lobe_bronchus": ("rll", "right lower lobe"),
    "left_upper_lobe_bronchus": ("lul", "left upper lobe"),
    "lingular_bronchus": ("lingula", "lingular"),
    "left_lower_lobe_bronchus": ("lll", "left lower lobe"),
    "segmental_bronchus": ("segmental", "subsegmental bronchus", "segmental bronchi"),
    "entry_site": ("entry", "entrance", "insertion site"),
    "proximal": ("proximal part",),
    "middle": ("mid", "midportion", "middle part"),
    "distal": ("distal part",),
    "target_site": ("target", "lesion site"),
    "undetermined": (
        "unknown",
        "unclear",
        "indeterminate",
        "not determined",
        "cannot be determined",
        "not visible",
        "n a",
        "not stated",
    ),
}

# "Key: value" line keys -> field.
KEY_ALIASES = {
    "finding": "label",
    "finding name": "label",
    "label": "label",
    "lesion": "label",
    "observation": "label",
    "category": "category",
    "finding type": "category",
    "finding category": "category",
    "type": "category",
    "location": "location",
    "anatomical location": "location",
    "anatomic location": "location",
    "site": "location",
    "segment": "location",
    "risk": "risk",
    "risk level": "risk",
    "risk assessment": "risk",
    "severity": "risk",
    "suggested next step": "next_step",
    "suggested next steps": "next_step",
    "next step": "next_step",
    "next steps": "next_step",
    "recommendation": "next_step",
    "recommendations": "next_step",
    "recommended next step": "next_step",
    "suggested action": "next_step",
    "description": "description",
    "details": "description",
    "confidence": "confidence",
    "confidence level": "confidence",
    "size": "size",
    "size mm": "size",
    "estimated size": "size",
    "image quality": "adequacy",
    "image adequacy": "adequacy",
    "quality": "adequacy",
    "answer": "answer",
    "relevant category": "category",
    "relevant finding": "category",
    "relevant location": "location",
}

FRAME_LEVEL_FIELDS = {"adequacy"}

_NO_FINDING_VALUES = {
    "none",
    "no finding",
    "no findings",
    "nil",
    "n a",
    "no abnormality",
    "no abnormalities",
    "no significant findings",
    "no significant finding",
    "nothing abnormal",
}
_NO_FINDING_SENTENCE = re.compile(
    r"\b(no (significant |abnormal |visible |pathological )?(findings?|abnormalit(y|ies)|lesions?)"
    r"|nothing abnormal|normal (study|examination|exam))\b",
    re.IGNORECASE,
)


def _norm(text: str) -> str:
    """Lower case, words only: "**Sigmoid-Colon**" -> "sigmoid colon"."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def _alias_table(values: tuple[str, ...], synonyms: dict[str, tuple[str, ...]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for value in values:
        for spelling in (value, humanize(value), *synonyms.get(value, ())):
            table.setdefault(_norm(spelling), value)
    return table


def category_aliases(procedure_type: str) -> dict[str, str]:
    return _alias_table(CATEGORIES[procedure_type], CATEGORY_SYNONYMS)


def location_aliases(procedure_type: str) -> dict[str, str]:
    return _alias_table(LOCATIONS[procedure_type], LOCATION_SYNONYMS)


def _lookup(text: str, table: dict[str, str], *, search: bool) -> str | None:
    """Exact alias match first; with ``search``, the longest alias found as whole words
    inside the text (ties: the later one, since English puts the head noun last, as in
    "bleeding ulcer")."""
    key = _norm(text)
    if key in table:
        return table[key]
    if not search or not key:
        return None
    padded = f" {key} "
    best: tuple[int, int, str] | None = None
    for alias, value in table.items():
        position = padded.rfind(f" {alias} ")
        if position >= 0:
            candidate = (len(alias), position, value)
            if best is None or candidate > best:
                best = candidate
    return best[2] if best else None


def normalize_risk(text: str) -> str | None:
    key = _norm(text)
    if key in RISK_ALIASES:
        return RISK_ALIASES[key]
    for word in ("high", "medium", "moderate", "low"):
        if re.search(rf"\b{word}\b", key):
            return RISK_ALIASES[word]
    return None


def normalize_adequacy(text: str) -> str | None:
    return _lookup(text, {_norm(k): v for k, v in ADEQUACY_ALIASES.items()}, search=True)


def clean_text(text: str, max_chars: int) -> str:
    """Free text made schema-safe: ASCII, no quotes/backslashes/control characters,
    single spaces, at most ``max_chars`` (cut, not rejected: the raw output is kept)."""
    replacements = {
        "\u2018": "'", "\u2019": "'", "\u201c": "'", "\u201d": "'", '"': "'",
        "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00d7": "x", "\u00b5": "u",
        "\\": "/",
    }
    for old, new in replacements.items():
        text = text.replace(old, new)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:max_chars].rstrip()


def _parse_confidence(text: str) -> float | None:
    key = _norm(text)
    words = {"very high": 0.9, "high": 0.8, "moderate": 0.5, "medium": 0.5, "low": 0.2, "very low": 0.1}
    if key in words:
        return words[key]
    match = re.search(r"(\d+(?:\.\d+)?)\s*(%|percent)?", text)
    if not match:
        return None
    number = float(match.group(1))
    if match.group(2) or number > 1:
        number /= 100
    number = round(number, 6)
    return number if 0 <= number <= 1 else None


def _parse_size_mm(text: str) -> float | None:
    match = re.search(r"(\d+(?:\.\d+)?)\s*(mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?)?", text, re.IGNORECASE)
    if not match:
        return None
    number = float(match.group(1))
    unit = (match.group(2) or "mm").lower()
    if unit.startswith("c"):
        number *= 10
    number = round(number, 6)
    return number if 0 <= number <= SIZE_MM_MAX else None


# ------------------------------------------------------------------ JSON extraction

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)```", re.DOTALL)


def _json_candidates(text: str) -> list[Any]:
    """JSON objects in fenced blocks first, then any object embedded in prose."""
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for match in _FENCE.finditer(text):
        body = match.group(2).strip()
        try:
            found.append(json.loads(body))
            continue
        except ValueError:
            pass
        found.extend(_embedded_objects(body, decoder))
    found.extend(_embedded_objects(text, decoder))
    return [item for item in found if isinstance(item, dict)]


def _embedded_objects(text: str, decoder: json.JSONDecoder) -> list[Any]:
    objects = []
    index = text.find("{")
    while index >= 0:
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        objects.append(value)
        index = text.find("{", end)
    return objects


def _normalize_frame_dict(data: dict[str, Any], procedure_type: str) -> dict[str, Any]:
    """Fix enum spellings in a frame answer that a model wrote without the schema."""
    categories = category_aliases(procedure_type)
    locations = location_aliases(procedure_type)
    data = dict(data)
    if isinstance(data.get("image_adequacy"), str):
        data["image_adequacy"] = normalize_adequacy(data["image_adequacy"]) or data["image_adequacy"]
    findings = data.get("findings")
    if isinstance(findings, list):
        fixed = []
        for item in findings:
            if isinstance(item, dict):
                item = dict(item)
                if isinstance(item.get("category"), str):
                    item["category"] = _lookup(item["category"], categories, search=True) or item["category"]
                if isinstance(item.get("location"), str):
                    item["location"] = _lookup(item["location"], locations, search=True) or item["location"]
                if isinstance(item.get("risk"), str):
                    item["risk"] = normalize_risk(item["risk"]) or item["risk"]
            fixed.append(item)
        data["findings"] = fixed
        if "no_finding" not in data:
            data["no_finding"] = not fixed
    return data


# ------------------------------------------------------------------- text shape

_KEY_LINE = re.compile(
    r"""^\s*(?:[-*+\u2022>]\s+|\d+[.)]\s+|\#+\s*)?   # bullet, number or heading mark
        (?:\*\*|__|\*|_)?\s*
        (?P<key>[A-Za-z][A-Za-z ()/'-]{0,40}?)
        \s*(?:\*\*|__|\*|_)?\s*:\s*(?:\*\*|__|\*|_)?\s*
        (?P<value>.*?)\s*$""",
    re.VERBOSE,
)
_BLOCK_HEADING = re.compile(
    r"^\s*(?:\#+\s*|\*\*|__)?\s*(?:finding|lesion)\s*#?\s*\d+\s*(?:\*\*|__)?\s*:?\s*$", re.IGNORECASE
)


def _unwrap(value: str) -> str:
    """Remove markdown that wraps a whole value: **x**, *x*, __x__, `x`."""
    for left, right in (("**", "**"), ("__", "__"), ("`", "`"), ("*", "*"), ("_", "_")):
        if len(value) > len(left) + len(right) and value.startswith(left) and value.endswith(right):
            return value[len(left) : -len(right)].strip()
    return value


def _text_fields(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(frame-level fields, one dict of fields per finding block)."""
    frame: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    pending_key: tuple[dict[str, str], str] | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("```"):
            continue
        if _BLOCK_HEADING.match(line):
            current = None
            pending_key = None
            continue
        match = _KEY_LINE.match(line)
        field = KEY_ALIASES.get(_norm(match.group("key"))) if match else None
        if field is None:
            # A value written on the line after its key ("Description:\n text").
            if pending_key is not None:
                target, name = pending_key
                target[name] = _unwrap(line.lstrip("-*+\u2022 ").strip())
                pending_key = None
            continue
        value = _unwrap(match.group("value"))
        if field in FRAME_LEVEL_FIELDS:
            target = frame
        else:
            # A field seen twice means the next finding has started.
            if current is None or field in current:
                current = {}
                blocks.append(current)
            target = current
        target[field] = value
        pending_key = (target, field) if not value else None
    return frame, blocks


def _frame_from_text(text: str, procedure_type: str) -> tuple[dict[str, Any] | None, str | None]:
    frame_fields, blocks = _text_fields(text)
    categories = category_aliases(procedure_type)
    locations = location_aliases(procedure_type)

    adequacy = "adequate"
    if frame_fields.get("adequacy"):
        adequacy = normalize_adequacy(frame_fields["adequacy"]) or ""
        if adequacy not in IMAGE_ADEQUACY:
            return None, f"the image quality {frame_fields['adequacy']!r} is not one the schema knows"

    findings: list[dict[str, Any]] = []
    for block in blocks:
        label_text = block.get("label", "")
        if "category" not in block and _norm(label_text) in _NO_FINDING_VALUES:
            continue  # "Finding: None"
        if not (label_text or block.get("category")):
            continue  # a stray key without a finding (e.g. only "Confidence:")
        category = _lookup(block.get("category") or label_text, categories, search=True) or "other"
        location = "undetermined"
        if block.get("location"):
            location = _lookup(block["location"], locations, search=True) or "undetermined"
        if not block.get("risk"):
            return None, f"the finding {label_text or category!r} has no risk level"
        risk = normalize_risk(block["risk"])
        if risk is None:
            return None, f"the risk level {block['risk']!r} is not low, medium or high"
        confidence = _parse_confidence(block["confidence"]) if block.get("confidence") else None
        label = clean_text(label_text, LABEL_MAX_CHARS) or humanize(category)
        description = clean_text(block.get("description") or label_text or humanize(category), DESCRIPTION_MAX_CHARS)
        findings.append(
            {
                "category": category,
                "location": location,
                "risk": risk,
                "confidence": 0.0 if confidence is None else confidence,
                "size_mm": _parse_size_mm(block["size"]) if block.get("size") else None,
                "label": label,
                "description": description or label,
                "suggested_next_step": clean_text(block.get("next_step", ""), NEXT_STEP_MAX_CHARS)
                or NOT_STATED,
            }
        )
    if not findings:
        said_none = any(_norm(b.get("label", "")) in _NO_FINDING_VALUES for b in blocks)
        if said_none or _NO_FINDING_SENTENCE.search(text):
            return {"image_adequacy": adequacy, "no_finding": True, "findings": []}, None
        return None, "no 'Finding:' / 'Location:' / 'Risk Level:' lines were found"
    if len(findings) > MAX_FINDINGS:
        # Keep the riskiest ones: a reviewer should see those first.
        order = {"high": 0, "medium": 1, "low": 2}
        findings = sorted(findings, key=lambda f: order[f["risk"]])[:MAX_FINDINGS]
    return {"image_adequacy": adequacy, "no_finding": False, "findings": findings}, None


def _clarify_from_text(text: str, procedure_type: str) -> tuple[dict[str, Any] | None, str | None]:
    frame_fields, blocks = _text_fields(text)
    fields: dict[str, str] = {}
    for block in blocks:
        for key, value in block.items():
            fields.setdefault(key, value)
    answer = clean_text(fields.get("answer", ""), ANSWER_MAX_CHARS)
    if not answer:
        return None, "no 'Answer:' line was found"
    category = location = None
    if fields.get("category"):
        category = _lookup(fields["category"], category_aliases(procedure_type), search=True)
    if fields.get("location"):
        location = _lookup(fields["location"], location_aliases(procedure_type), search=True)
    confidence = _parse_confidence(fields["confidence"]) if fields.get("confidence") else None
    adequacy = normalize_adequacy(frame_fields.get("adequacy", "")) or "adequate"
    return {
        "answer": answer,
        "confidence": 0.0 if confidence is None else confidence,
        "relevant_category": category,
        "relevant_location": location,
        "image_adequacy": adequacy,
    }, None


# ------------------------------------------------------------------------ entry


def describe_validation_error(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "answer"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    more = len(error.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_free_text(text: str, procedure_type: str, kind: str = "frame") -> ParseOutcome:
    """Parse an answer that is not a bare JSON object (see the module docstring)."""
    model = output_model(procedure_type, kind)
    json_error: str | None = None
    for candidate in _json_candidates(text):
        try:
            return ParseOutcome(model.model_validate(candidate), "json_extracted", None)
        except ValidationError as error:
            json_error = json_error or describe_validation_error(error)
        if kind == "frame":
            try:
                normalized = _normalize_frame_dict(candidate, procedure_type)
                return ParseOutcome(model.model_validate(normalized), "json_extracted", None)
            except ValidationError:
                pass
    if json_error is not None:
        return ParseOutcome(None, None, f"it contains JSON that does not fit the schema ({json_error})")

    builder = _frame_from_text if kind == "frame" else _clarify_from_text
    data, problem = builder(text, procedure_type)
    if data is None:
        return ParseOutcome(None, None, f"it is neither JSON nor the expected text shape: {problem}")
    try:
        return ParseOutcome(model.model_validate(data), "text_fallback", None)
    except ValidationError as error:
        return ParseOutcome(None, None, f"its text did not fit the schema ({describe_validation_error(error)})")


def parse_model_output(raw: str, procedure_type: str, kind: str = "frame") -> ParseOutcome:
    """The engine's one way from model text to a validated object.

    A bare JSON object that validates is taken as is ("json"). Anything else goes through
    ``parse_free_text``. The error, when there is one, is a full sentence for a person.
    """
    model = output_model(procedure_type, kind)
    text = (raw or "").strip()
    what = {"frame": "frame analysis", "live": "live frame analysis"}.get(kind, "answer")
    if not text:
        return ParseOutcome(
            None, None, f"The model returned an empty {what}; retry the frame or check the model server."
        )
    strict_error: str | None = None
    try:
        return ParseOutcome(model.model_validate_json(text), "json", None)
    except ValidationError as error:
        if error.errors() and error.errors()[0].get("type") != "json_invalid":
            strict_error = describe_validation_error(error)
    if strict_error is not None:
        # A complete JSON object that breaks the schema: try spelling fixes only.
        if kind == "frame":
            try:
                fixed = _normalize_frame_dict(json.loads(text), procedure_type)
                return ParseOutcome(model.model_validate(fixed), "json_extracted", None)
            except (ValidationError, ValueError, TypeError, AttributeError):
                pass
        return ParseOutcome(
            None,
            None,
            f"The model's {what} is JSON but does not fit the {procedure_type} schema "
            f"({strict_error}); it was not recorded as a finding and the raw output is kept for review.",
        )
    if kind == "live":
        # Live answers are short JSON from a grammar or a response_format; the text shape of
        # the fallback parser is a recorded-frame answer, not theirs.
        return ParseOutcome(None, None, f"The model's {what} is not JSON; it was not recorded as a finding and "
                                        "the raw output is kept for review.")
    outcome = parse_free_text(text, procedure_type, kind)
    if outcome.ok:
        return outcome
    return ParseOutcome(
        None,
        None,
        f"The model's {what} could not be read: {outcome.error}. "
        "It was not recorded as a finding; the raw output is kept for review.",
    )
