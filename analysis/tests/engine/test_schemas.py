import re

import pytest
from pydantic import ValidationError

from analysis.engine import schemas
from analysis.engine.schemas import (
    CATEGORIES,
    LOCATIONS,
    OUTPUT_KINDS,
    PROCEDURE_TYPES,
    frame_model,
    json_schema_for,
    live_model,
)

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
    """Remote servers see both; the local grammar takes the bound from the pattern and
    enforces it with length masks (answer_grammar), so the two must agree."""

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
        for kind in OUTPUT_KINDS:
            found = list(strings(json_schema_for(procedure_type, kind)))
            assert found, "expected free-text fields"
            for node in found:
                bound = re.search(r"\{1,(\d+)\}\$$", node["pattern"])
                assert bound and int(bound.group(1)) == node["maxLength"]
                # Long bounds are what made grammar masks slow; the answer window is small.
                assert node["maxLength"] <= 128


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




def test_the_live_answer_is_compact_and_maps_onto_finding_fields():
    analysis = live_model("colonoscopy").model_validate({
        "image_adequacy": "adequate", "no_finding": False,
        "findings": [{"category": "polyp", "location": "cecum", "risk": "low", "confidence": 85, "size_mm": 4,
                      "label": "Small polyp"}],
    })
    values = analysis.findings[0].record_values()
    assert values == {"category": "polyp", "location": "cecum", "risk": "low", "confidence": 0.85, "size_mm": 4.0,
                      "label": "Small polyp", "description": "", "suggested_next_step": ""}
    full = frame_model("colonoscopy").model_validate(frame()).findings[0].record_values()
    assert set(full) == set(values)


@pytest.mark.parametrize("change", [{"confidence": 101}, {"confidence": 0.5}, {"size_mm": 6.5}, {"label": "x" * 41},
                                    {"description": "prose"}])
def test_the_live_answer_refuses_prose_and_fractions(change):
    finding = {"category": "polyp", "location": "cecum", "risk": "low", "confidence": 85, "size_mm": 4, "label": "P"}
    with pytest.raises(ValidationError):
        live_model("colonoscopy").model_validate(
            {"image_adequacy": "adequate", "no_finding": False, "findings": [{**finding, **change}]})
