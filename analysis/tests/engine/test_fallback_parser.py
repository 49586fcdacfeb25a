"""The fallback parser: JSON as-is, JSON extracted from fences or prose, schema
validation, and a sentence for everything else (nothing guessed from free text)."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.engine.fallback_parser import json_candidates, parse_model_output
from analysis.engine.schemas import PROCEDURE_TYPES

from .strategies import frame_analyses

POLYP = {
    "category": "polyp",
    "location": "sigmoid_colon",
    "risk": "medium",
    "confidence": 0.7,
    "size_mm": 6,
    "label": "Sessile polyp",
    "description": "A 6 mm sessile polyp.",
    "suggested_next_step": "Consider polypectomy.",
}
POLYP_JSON = json.dumps({"image_adequacy": "adequate", "no_finding": False, "findings": [POLYP]})


def test_a_bare_json_answer_is_parsed_as_json():
    outcome = parse_model_output(POLYP_JSON, "colonoscopy")
    assert outcome.parsed_with == "json"
    assert outcome.value.findings[0].label == "Sessile polyp"


@pytest.mark.parametrize(
    "wrapped",
    [
        f"```json\n{POLYP_JSON}\n```",
        f"Here is my analysis of the frame:\n```\n{POLYP_JSON}\n```\nPlease review it.",
        f"Sure. {POLYP_JSON} Let me know if you need more.",
        "Analysis:\n" + json.dumps(json.loads(POLYP_JSON), indent=2),
    ],
    ids=["json-fence", "bare-fence-with-prose", "inline-prose", "pretty-printed"],
)
def test_json_inside_fences_or_prose_is_extracted(wrapped):
    outcome = parse_model_output(wrapped, "colonoscopy")
    assert outcome.ok, outcome.error
    assert outcome.parsed_with == "json_extracted"
    assert outcome.value.findings[0].model_dump() == {**POLYP, "size_mm": 6.0}


def test_the_first_schema_valid_object_wins_over_an_invalid_one():
    text = f'Draft: {{"findings": [{{"risk": 5}}]}}\nFinal:\n```json\n{POLYP_JSON}\n```'
    outcome = parse_model_output(text, "colonoscopy")
    assert outcome.ok, outcome.error
    assert outcome.value.findings[0].category == "polyp"


def test_fenced_objects_come_before_prose_objects_and_each_object_once():
    fenced = {"a": 1}
    prose_object = {"b": 2}
    text = f"{json.dumps(prose_object)} and ```json\n{json.dumps(fenced)}\n```"
    assert json_candidates(text) == [fenced, prose_object]


@pytest.mark.parametrize(
    "text, expected_error",
    [
        ("", "empty"),
        ("I cannot help with that.", "not JSON"),
        # The reference system's "Key: value" text shape is no longer read: only JSON is.
        ("**Finding:** Sessile polyp\n**Location:** Sigmoid\n**Risk Level:** Moderate", "not JSON"),
        ('{"image_adequacy":"adequate","no_finding":false,"findings":[{"category":"polyp"}]}', "does not fit"),
        ('```json\n{"image_adequacy": "adequate", "findings": [{"risk": 5}]}\n```', "does not fit"),
        # Free spellings of enum values are not normalised: the schema decides.
        (POLYP_JSON.replace('"sigmoid_colon"', '"Sigmoid colon"'), "does not fit"),
    ],
)
def test_unusable_answers_fail_with_a_sentence_and_no_finding(text, expected_error):
    outcome = parse_model_output(text, "colonoscopy")
    assert not outcome.ok
    assert outcome.value is None
    assert outcome.parsed_with is None
    assert expected_error in outcome.error
    assert outcome.error.endswith(".")


def test_clarify_answers_are_read_from_json():
    answer = {"answer": "The lesion edge looks regular.", "confidence": 0.6,
              "relevant_location": "gastric_antrum", "relevant_category": None,
              "image_adequacy": "adequate"}
    outcome = parse_model_output(f"Answer follows. {json.dumps(answer)}", "upper_gi", "clarify")
    assert outcome.ok, outcome.error
    assert outcome.value.answer == "The lesion edge looks regular."
    assert outcome.value.relevant_location == "gastric_antrum"


def render_json_shape(analysis, rnd: random.Random) -> str:
    body = json.dumps(analysis.model_dump(mode="json"), indent=rnd.choice([None, 2]))
    return rnd.choice(
        [
            f"```json\n{body}\n```",
            f"Here is the structured analysis:\n\n```\n{body}\n```\n\nReview before use.",
            f"My answer: {body}",
        ]
    )


@settings(max_examples=150, deadline=None)
@given(frame_analyses(), st.randoms(use_true_random=False))
def test_json_shapes_round_trip(drawn, rnd):
    procedure_type, analysis = drawn
    outcome = parse_model_output(render_json_shape(analysis, rnd), procedure_type)
    assert outcome.ok, outcome.error
    assert outcome.value == analysis


@settings(max_examples=100, deadline=None)
@given(frame_analyses())
def test_compact_json_round_trips_as_json(drawn):
    procedure_type, analysis = drawn
    outcome = parse_model_output(analysis.model_dump_json(), procedure_type)
    assert outcome.parsed_with == "json"
    assert outcome.value == analysis


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.sampled_from(PROCEDURE_TYPES))
def test_arbitrary_text_never_crashes_the_parser(text, procedure_type):
    outcome = parse_model_output(text, procedure_type)
    assert outcome.ok == (outcome.value is not None)
    assert outcome.ok or outcome.error
