import re

import pytest

from analysis.engine import prompts
from analysis.engine.prompts import (
    CLARIFY_PROMPT_VERSION,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    clarify_prompt,
    frame_prompt,
    sanitize_question,
)
from analysis.engine.schemas import CATEGORIES, IMAGE_ADEQUACY, LOCATIONS, PROCEDURE_TYPES


def test_prompt_versions_are_named_and_distinct():
    assert re.fullmatch(r"frame-v\d+", PROMPT_VERSION)
    assert re.fullmatch(r"clarify-v\d+", CLARIFY_PROMPT_VERSION)
    assert prompts.prompt_version_for("frame") == PROMPT_VERSION
    assert prompts.prompt_version_for("clarify") == CLARIFY_PROMPT_VERSION


@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_the_frame_prompt_names_the_procedure_and_every_allowed_value(procedure_type):
    text = frame_prompt(procedure_type)
    assert prompts.PROCEDURE_NAMES[procedure_type] in text
    for value in (*CATEGORIES[procedure_type], *LOCATIONS[procedure_type], *IMAGE_ADEQUACY):
        assert value in text
    assert "JSON" in text
    assert '"suggested_next_step"' in text


def test_prompts_only_list_their_own_procedures_locations():
    assert "sigmoid_colon" not in frame_prompt("bronchoscopy")
    assert "trachea" not in frame_prompt("colonoscopy")


def test_the_prompts_do_not_claim_clinical_authority():
    text = (SYSTEM_PROMPT + " " + frame_prompt("colonoscopy")).lower()
    assert "not a diagnostic device" in text
    assert "not a diagnosis" in text
    for claim in ("you are a doctor", "you are a radiologist", "expert gastroenterologist", "diagnose the"):
        assert claim not in text


def test_the_clarify_prompt_quotes_a_cleaned_question():
    text = clarify_prompt("upper_gi", "  Is the\nlesion\x00 bleeding?  ")
    assert 'Question: "Is the lesion bleeding?"' in text
    assert "gastric_antrum" in text


def test_questions_are_bounded_and_must_not_be_empty():
    assert len(sanitize_question("x" * 5000)) == prompts.QUESTION_MAX_CHARS
    with pytest.raises(ValueError, match="empty"):
        sanitize_question(" \n\t ")


def test_unknown_procedure_type_is_refused():
    with pytest.raises(ValueError, match="Unknown procedure type"):
        frame_prompt("cystoscopy")
