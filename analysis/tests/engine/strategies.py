"""Hypothesis strategies for schema-valid answers."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from analysis.engine.schemas import (
    ANSWER_MAX_CHARS,
    CATEGORIES,
    DESCRIPTION_MAX_CHARS,
    IMAGE_ADEQUACY,
    LABEL_MAX_CHARS,
    LIVE_LABEL_MAX_CHARS,
    LOCATIONS,
    MAX_FINDINGS,
    NEXT_STEP_MAX_CHARS,
    PROCEDURE_TYPES,
    RISK_LEVELS,
    clarify_model,
    frame_model,
    live_model,
)

# Every character the schema allows in text: printable ASCII except '"' and '\'.
SCHEMA_TEXT_ALPHABET = "".join(chr(c) for c in range(32, 127) if chr(c) not in '"\\')
# Prose-like text for the "Key: value" shape, where markdown characters at the edges of a
# value are read as formatting (the parser documents that).
PROSE_ALPHABET = string.ascii_letters + string.digits + ".,;()%/+'-"


def schema_text(max_chars: int):
    return st.text(alphabet=SCHEMA_TEXT_ALPHABET, min_size=1, max_size=max_chars)


def prose(max_chars: int):
    # Words of <= 12 characters plus a space each: this many always fit.
    word = st.text(alphabet=PROSE_ALPHABET, min_size=1, max_size=12)
    return st.lists(word, min_size=1, max_size=max(1, min(8, max_chars // 13))).map(" ".join)


# Grammar-representable numbers: schemas.NUMBER_DECIMALS (2 for a confidence, 1 for a size).
confidences = st.integers(0, 100).map(lambda n: n / 100)
sizes = st.one_of(st.none(), st.integers(0, 400).map(lambda n: n / 2))


@st.composite
def frame_analyses(draw, procedure_type=None, text=schema_text):
    procedure_type = procedure_type or draw(st.sampled_from(PROCEDURE_TYPES))
    count = draw(st.integers(0, MAX_FINDINGS))
    findings = [
        {
            "category": draw(st.sampled_from(CATEGORIES[procedure_type])),
            "location": draw(st.sampled_from(LOCATIONS[procedure_type])),
            "risk": draw(st.sampled_from(RISK_LEVELS)),
            "confidence": draw(confidences),
            "size_mm": draw(sizes),
            "label": draw(text(LABEL_MAX_CHARS)),
            "description": draw(text(DESCRIPTION_MAX_CHARS)),
            "suggested_next_step": draw(text(NEXT_STEP_MAX_CHARS)),
        }
        for _ in range(count)
    ]
    data = {
        "image_adequacy": draw(st.sampled_from(IMAGE_ADEQUACY)),
        "no_finding": not findings,
        "findings": findings,
    }
    return procedure_type, frame_model(procedure_type).model_validate(data)


@st.composite
def clarify_answers(draw, procedure_type=None):
    procedure_type = procedure_type or draw(st.sampled_from(PROCEDURE_TYPES))
    data = {
        "answer": draw(schema_text(ANSWER_MAX_CHARS)),
        "confidence": draw(confidences),
        "relevant_category": draw(st.none() | st.sampled_from(CATEGORIES[procedure_type])),
        "relevant_location": draw(st.none() | st.sampled_from(LOCATIONS[procedure_type])),
        "image_adequacy": draw(st.sampled_from(IMAGE_ADEQUACY)),
    }
    return procedure_type, clarify_model(procedure_type).model_validate(data)


@st.composite
def live_analyses(draw, procedure_type=None, text=schema_text):
    procedure_type = procedure_type or draw(st.sampled_from(PROCEDURE_TYPES))
    count = draw(st.integers(0, MAX_FINDINGS))
    findings = [
        {
            "category": draw(st.sampled_from(CATEGORIES[procedure_type])),
            "location": draw(st.sampled_from(LOCATIONS[procedure_type])),
            "risk": draw(st.sampled_from(RISK_LEVELS)),
            "confidence": draw(st.integers(0, 100)),
            "size_mm": draw(st.none() | st.integers(0, 200)),
            "label": draw(text(LIVE_LABEL_MAX_CHARS)),
        }
        for _ in range(count)
    ]
    data = {
        "image_adequacy": draw(st.sampled_from(IMAGE_ADEQUACY)),
        "no_finding": not findings,
        "findings": findings,
    }
    return procedure_type, live_model(procedure_type).model_validate(data)
