import json
import re

import pytest
import xgrammar as xgr
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from analysis.engine import schemas
from analysis.engine.grammar import GrammarCache, grammar_schema
from analysis.engine.schemas import (
    CATEGORIES,
    LOCATIONS,
    PROCEDURE_TYPES,
    frame_model,
    json_schema_for,
)

from .strategies import clarify_answers, frame_analyses

VALID_FINDING = {
    "category": "polyp",
    "location": "sigmoid_colon",
    "risk": "medium",
    "confidence": 0.7,
    "size_mm": 6,
    "label": "Sessile polyp",
    "description": "A small sessile polyp.",
    "suggested_next_step": "Consider polypectomy.",
}


def frame(**changes):
    data = {"image_adequacy": "adequate", "no_finding": False, "findings": [dict(VALID_FINDING)]}
    data.update(changes)
    return data


def test_procedure_types_are_the_django_choice_values():
    assert PROCEDURE_TYPES == ("colonoscopy", "upper_gi", "bronchoscopy", "other")
    for procedure_type in PROCEDURE_TYPES:
        assert "undetermined" in LOCATIONS[procedure_type]
        assert "other" in CATEGORIES[procedure_type]
        assert len(set(LOCATIONS[procedure_type])) == len(LOCATIONS[procedure_type])


def test_choices_pair_values_with_readable_labels():
    assert schemas.choices(("sigmoid_colon", "rectum")) == [("sigmoid_colon", "Sigmoid colon"), ("rectum", "Rectum")]


def test_colonoscopy_locations_follow_the_colon_segments():
    assert LOCATIONS["colonoscopy"][:10] == (
        "terminal_ileum", "cecum", "ascending_colon", "hepatic_flexure", "transverse_colon",
        "splenic_flexure", "descending_colon", "sigmoid_colon", "rectum", "anus",
    )


def test_a_valid_answer_validates_and_keeps_its_values():
    analysis = frame_model("colonoscopy").model_validate(frame())
    assert analysis.findings[0].location == "sigmoid_colon"
    assert analysis.findings[0].size_mm == 6


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"findings": [{**VALID_FINDING, "location": "trachea"}]}, "location of another procedure"),
        ({"findings": [{**VALID_FINDING, "category": "varices"}]}, "category of another procedure"),
        ({"findings": [{**VALID_FINDING, "confidence": 1.5}]}, "confidence above 1"),
        ({"findings": [{**VALID_FINDING, "size_mm": 250}]}, "size above 200 mm"),
        ({"findings": [{**VALID_FINDING, "risk": "critical"}]}, "unknown risk"),
        ({"findings": [{**VALID_FINDING, "label": "x" * 61}]}, "label too long"),
        ({"findings": [{**VALID_FINDING, "label": "caf\u00e9"}]}, "non-ASCII text"),
        ({"findings": [{**VALID_FINDING, "label": ""}]}, "empty label"),
        ({"findings": [dict(VALID_FINDING)] * 4}, "too many findings"),
        ({"no_finding": True}, "no_finding with findings"),
        ({"findings": []}, "findings missing while no_finding is false"),
        ({"extra": 1}, "unknown key"),
    ],
)
def test_it_rejects_answers_outside_the_schema(change, reason):
    with pytest.raises(ValidationError):
        frame_model("colonoscopy").model_validate(frame(**change))


def test_every_text_field_is_bounded_by_both_pattern_and_length():
    """The grammar only sees the pattern (grammar_schema drops the lengths), so the
    pattern must carry the same bound as maxLength."""

    def strings(node):
        if isinstance(node, dict):
            if node.get("type") == "string" and "enum" not in node:
                yield node
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)

    for procedure_type in PROCEDURE_TYPES:
        for kind in ("frame", "clarify"):
            found = list(strings(json_schema_for(procedure_type, kind)))
            assert found, "expected free-text fields"
            for node in found:
                bound = re.search(r"\{1,(\d+)\}\$$", node["pattern"])
                assert bound and int(bound.group(1)) == node["maxLength"]
            assert "maxLength" not in json.dumps(grammar_schema(json_schema_for(procedure_type, kind)))


def test_every_list_is_bounded():
    def arrays(node):
        if isinstance(node, dict):
            if node.get("type") == "array":
                yield node
            for value in node.values():
                yield from arrays(value)
        elif isinstance(node, list):
            for value in node:
                yield from arrays(value)

    for procedure_type in PROCEDURE_TYPES:
        found = list(arrays(json_schema_for(procedure_type)))
        assert found
        assert all(node["maxItems"] <= schemas.MAX_FINDINGS for node in found)


def test_json_schema_for_returns_a_fresh_copy():
    first = json_schema_for("upper_gi")
    first["anyOf"].clear()
    assert json_schema_for("upper_gi")["anyOf"]


def test_unknown_procedure_type_is_a_clear_error():
    with pytest.raises(ValueError, match="colonoscopy, upper_gi, bronchoscopy, other"):
        json_schema_for("cystoscopy")


@pytest.fixture(scope="module")
def grammar_cache(demo_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    return GrammarCache(tokenizer, len(tokenizer), [tokenizer.eos_token_id])


def _grammar_accepts(cache, procedure_type, kind, text) -> bool:
    matcher = xgr.GrammarMatcher(cache.get(schemas.json_schema_text(procedure_type, kind)))
    return matcher.accept_string(text) and matcher.is_completed()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame_analyses())
def test_the_grammar_accepts_every_valid_frame_answer(grammar_cache, drawn):
    """The grammar is no stricter than the schema (for numbers with <= 6 decimals)."""
    procedure_type, analysis = drawn
    assert _grammar_accepts(grammar_cache, procedure_type, "frame", analysis.model_dump_json())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clarify_answers())
def test_the_grammar_accepts_every_valid_clarify_answer(grammar_cache, drawn):
    procedure_type, answer = drawn
    assert _grammar_accepts(grammar_cache, procedure_type, "clarify", answer.model_dump_json())


@pytest.mark.parametrize(
    "text",
    [
        '{"image_adequacy":"adequate","no_finding":true,"findings":[{"category":"polyp"}]}',
        '{"image_adequacy":"adequate","no_finding":false,"findings":[]}',
        '{"image_adequacy": "adequate","no_finding":true,"findings":[]}',
        json.dumps(frame(findings=[{**VALID_FINDING, "label": "tab\there"}]), separators=(",", ":")),
    ],
    ids=["findings-with-no-finding", "no-findings-with-finding", "free-whitespace", "control-char"],
)
def test_the_grammar_refuses_what_the_schema_refuses(grammar_cache, text):
    assert not _grammar_accepts(grammar_cache, "colonoscopy", "frame", text)
