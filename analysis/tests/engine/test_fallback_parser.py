import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.engine.fallback_parser import (
    CATEGORY_SYNONYMS,
    LOCATION_SYNONYMS,
    RISK_ALIASES,
    _norm,
    category_aliases,
    location_aliases,
    parse_model_output,
)
from analysis.engine.schemas import CATEGORIES, LOCATIONS, PROCEDURE_TYPES, humanize

from .strategies import frame_analyses, prose

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


# ---------------------------------------------------------------- examples


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


def test_the_reference_text_shape_is_parsed_with_synonyms():
    text = (
        "Here is what I see in this frame.\n\n"
        "**Finding:** Sessile polyp\n"
        "**Location:** Sigmoid\n"
        "**Risk Level:** Moderate\n"
        "**Suggested Next Step:** Consider polypectomy.\n\n"
        "This is not a diagnosis."
    )
    outcome = parse_model_output(text, "colonoscopy")
    assert outcome.ok, outcome.error
    assert outcome.parsed_with == "text_fallback"
    finding = outcome.value.findings[0]
    assert (finding.category, finding.location, finding.risk) == ("polyp", "sigmoid_colon", "medium")
    assert finding.label == "Sessile polyp"
    assert finding.suggested_next_step == "Consider polypectomy."
    # What the text did not say gets the documented defaults.
    assert finding.confidence == 0.0 and finding.size_mm is None
    assert outcome.value.image_adequacy == "adequate"


def test_numbered_bulleted_findings_in_any_case_are_separate_findings():
    text = (
        "1. **finding**: Ulcer\n"
        "   - LOCATION: rectum\n"
        "   - risk level: HIGH\n"
        "   - Confidence: 80%\n"
        "   - Size: 1.2 cm\n"
        "   - suggested next step: biopsy\n"
        "2. **Finding**: Angioectasia\n"
        "   - Location: cecum\n"
        "   - Risk Level: low\n"
        "   - Suggested Next Step: none needed\n"
    )
    outcome = parse_model_output(text, "colonoscopy")
    assert outcome.ok, outcome.error
    first, second = outcome.value.findings
    assert (first.category, first.location, first.risk, first.confidence, first.size_mm) == (
        "ulcer", "rectum", "high", 0.8, 12.0,
    )
    assert (second.category, second.location, second.risk) == ("vascular_lesion", "cecum", "low")


def test_location_synonyms_per_procedure():
    text = "Finding: Barrett esophagus\nLocation: Z-line\nRisk Level: medium\nSuggested Next Step: biopsy"
    outcome = parse_model_output(text, "upper_gi")
    assert outcome.value.findings[0].location == "gastroesophageal_junction"
    assert outcome.value.findings[0].category == "barrett_esophagus"
    text = "Finding: Endobronchial mass\nLocation: RUL\nRisk: high\nNext step: biopsy"
    outcome = parse_model_output(text, "bronchoscopy")
    assert (outcome.value.findings[0].category, outcome.value.findings[0].location) == (
        "mass", "right_upper_lobe_bronchus",
    )


def test_a_text_answer_saying_nothing_was_found_is_a_no_finding_answer():
    outcome = parse_model_output("No significant findings.\nImage quality: blurry", "colonoscopy")
    assert outcome.ok, outcome.error
    assert outcome.value.no_finding and outcome.value.findings == []
    assert outcome.value.image_adequacy == "inadequate_blur"
    outcome = parse_model_output("**Finding:** None\n**Location:** N/A", "colonoscopy")
    assert outcome.ok and outcome.value.no_finding


def test_json_with_free_spelling_is_normalised():
    data = json.loads(POLYP_JSON)
    data["findings"][0].update(category="Polyps", location="Sigmoid Colon", risk="moderate")
    outcome = parse_model_output(json.dumps(data), "colonoscopy")
    assert outcome.ok, outcome.error
    assert outcome.value.findings[0].location == "sigmoid_colon"
    assert outcome.value.findings[0].risk == "medium"


def test_unicode_text_is_made_schema_safe():
    text = (
        "Finding: Polyp \u2013 \u201csessile\u201d, 6\u00a0mm\n"
        "Location: sigmoid\nRisk Level: low\nSuggested Next Step: Follow\u2011up"
    )
    outcome = parse_model_output(text, "colonoscopy")
    assert outcome.ok, outcome.error
    assert outcome.value.findings[0].label == "Polyp - 'sessile', 6 mm"


@pytest.mark.parametrize(
    "text, expected_error",
    [
        ("", "empty"),
        ("I cannot help with that.", "could not be read"),
        ('{"image_adequacy":"adequate","no_finding":false,"findings":[{"category":"polyp"}]}', "does not fit"),
        ("Finding: Polyp\nLocation: rectum\nSuggested Next Step: remove", "no risk level"),
        ("Finding: Polyp\nLocation: rectum\nRisk Level: purple", "not low, medium or high"),
        ('```json\n{"image_adequacy": "adequate", "findings": [{"risk": 5}]}\n```', "does not fit"),
    ],
)
def test_unusable_answers_fail_with_a_sentence_and_no_finding(text, expected_error):
    outcome = parse_model_output(text, "colonoscopy")
    assert not outcome.ok
    assert outcome.value is None
    assert expected_error in outcome.error
    assert outcome.error.endswith(".")


def test_clarify_answers_in_text_shape():
    text = "**Answer:** The lesion edge looks regular.\n**Confidence:** 0.6\n**Relevant location:** antrum"
    outcome = parse_model_output(text, "upper_gi", "clarify")
    assert outcome.ok, outcome.error
    assert outcome.value.answer == "The lesion edge looks regular."
    assert outcome.value.relevant_location == "gastric_antrum"
    assert outcome.value.relevant_category is None


# ------------------------------------------------------- property round trips

RISK_SPELLINGS = {
    value: [alias for alias, target in RISK_ALIASES.items() if target == value] for value in ("low", "medium", "high")
}
ADEQUACY_SPELLINGS = {
    "adequate": ["adequate", "Adequate", "good"],
    "inadequate_blur": ["inadequate_blur", "Inadequate blur", "blurry"],
    "inadequate_exposure": ["Inadequate exposure", "too dark"],
    "inadequate_obscured": ["inadequate_obscured", "obscured by debris"],
}


def _case(text: str, rnd: random.Random) -> str:
    return rnd.choice([text, text.upper(), text.title(), text.lower()])


def _spelling(table: dict[str, str], value: str, rnd: random.Random) -> str:
    return rnd.choice(sorted(alias for alias, target in table.items() if target == value))


def render_text_shape(procedure_type, analysis, rnd: random.Random, numbered: bool) -> str:
    """The reference system's "Key: value" shape, with the variations models produce."""
    categories = category_aliases(procedure_type)
    locations = location_aliases(procedure_type)
    bold = rnd.choice([("", ""), ("**", "**"), ("__", "__")])
    bullet = rnd.choice(["", "- ", "* "])

    def line(key: str, value: str) -> str:
        colon_inside = rnd.random() < 0.5
        key = _case(key, rnd) if rnd.random() < 0.3 else key
        if colon_inside:
            return f"{bullet}{bold[0]}{key}:{bold[1]} {value}"
        return f"{bullet}{bold[0]}{key}{bold[1]}: {value}"

    lines = []
    if rnd.random() < 0.5:
        lines += ["Here is my review of this frame.", ""]
    adequacy_line = line(
        rnd.choice(["Image quality", "Image adequacy"]),
        rnd.choice(ADEQUACY_SPELLINGS[analysis.image_adequacy]),
    )
    if analysis.image_adequacy != "adequate" or rnd.random() < 0.5:
        lines.append(adequacy_line)
    if analysis.no_finding:
        lines.append(rnd.choice(["No significant findings.", line("Finding", "None")]))
    for number, finding in enumerate(analysis.findings, start=1):
        if numbered:
            lines.append(f"### Finding {number}")
        body = [
            line("Category", _case(_spelling(categories, finding.category, rnd), rnd)),
            line(
                rnd.choice(["Location", "Anatomical location"]),
                _case(_spelling(locations, finding.location, rnd), rnd),
            ),
            line(rnd.choice(["Risk Level", "Risk"]), _case(rnd.choice(RISK_SPELLINGS[finding.risk]), rnd)),
            line(
                "Confidence",
                rnd.choice([f"{finding.confidence}", f"{round(finding.confidence * 100)}%"]),
            ),
            line("Description", finding.description),
            line(rnd.choice(["Suggested Next Step", "Recommendation"]), finding.suggested_next_step),
        ]
        if finding.size_mm is not None:
            body.append(line("Size", rnd.choice([f"{finding.size_mm:g} mm", f"{finding.size_mm:g}mm"])))
        elif rnd.random() < 0.5:
            body.append(line("Size", "not measurable"))
        rnd.shuffle(body)
        # The finding's own line opens its block, as in the reference output.
        lines += [line("Finding", finding.label), *body, ""]
    if rnd.random() < 0.5:
        lines.append("Note: this is not a diagnosis; a clinician must review it.")
    text = "\n".join(lines)
    if rnd.random() < 0.3:
        text = f"```\n{text}\n```"
    return text


def render_json_shape(analysis, rnd: random.Random) -> str:
    data = analysis.model_dump(mode="json")
    body = json.dumps(data, indent=rnd.choice([None, 2]))
    return rnd.choice(
        [
            f"```json\n{body}\n```",
            f"Here is the structured analysis:\n\n```\n{body}\n```\n\nReview before use.",
            f"My answer: {body}",
        ]
    )


@settings(max_examples=200, deadline=None)
@given(frame_analyses(text=prose), st.randoms(use_true_random=False), st.booleans())
def test_text_shapes_round_trip(drawn, rnd, numbered):
    procedure_type, analysis = drawn
    text = render_text_shape(procedure_type, analysis, rnd, numbered)
    outcome = parse_model_output(text, procedure_type)
    assert outcome.ok, f"{outcome.error}\n---\n{text}"
    assert outcome.parsed_with == "text_fallback"
    assert outcome.value == analysis, text


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


def test_spellings_are_unambiguous_within_each_procedure_type():
    """Each spelling (a value, its label or a synonym) must point at one value only:
    the alias tables keep the first claimant, which would silently hide a clash."""
    for procedure_type in PROCEDURE_TYPES:
        for values, synonyms, table in (
            (CATEGORIES[procedure_type], CATEGORY_SYNONYMS, category_aliases(procedure_type)),
            (LOCATIONS[procedure_type], LOCATION_SYNONYMS, location_aliases(procedure_type)),
        ):
            claimed: dict[str, str] = {}
            for value in values:
                for spelling in {value, humanize(value), *synonyms.get(value, ())}:
                    key = _norm(spelling)
                    assert claimed.setdefault(key, value) == value, (procedure_type, spelling)
                    assert table[key] == value
