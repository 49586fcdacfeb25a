"""The longest valid answer must fit in max_new_tokens, or a valid answer could be cut off.

The argument, for any byte-fallback tokenizer (the demo's and Gemma's alike):
1. The grammar emits compact JSON with a fixed key order, enum values, numbers with a
   bounded number of digits, and text fields of printable ASCII with a maximum length
   (enforced by the length masks of constraint.py); so the longest answer has a
   computable number of characters, all ASCII (1 byte each).
2. The grammar never allows special tokens inside the answer, and every other token
   decodes to at least one byte, so tokens <= bytes = characters.
3. One more token stops generation (<end_of_turn> or EOS).
Hence tokens <= characters(longest answer) + 1, which must be <= MAX_NEW_TOKENS[kind].
The tests below build that longest answer, prove the grammar accepts it (it is a real
output) and that the number bounds are tight, then check both the character bound and the
demo tokenizer's actual token count.
"""

import pytest

from analysis.engine import schemas
from analysis.engine.grammar import GrammarCache
from analysis.engine.schemas import (
    ANSWER_MAX_CHARS,
    CATEGORIES,
    DESCRIPTION_MAX_CHARS,
    IMAGE_ADEQUACY,
    LABEL_MAX_CHARS,
    LIVE_LABEL_MAX_CHARS,
    LOCATIONS,
    MAX_FINDINGS,
    MAX_NEW_TOKENS,
    NEXT_STEP_MAX_CHARS,
    OUTPUT_KINDS,
    PROCEDURE_TYPES,
)

# The longest numbers the grammar admits (schemas.NUMBER_DECIMALS: 2 and 1 decimals).
LONGEST_CONFIDENCE = "0.12"
LONGEST_SIZE = "199.9"
LONGEST_LIVE_CONFIDENCE = "100"
LONGEST_LIVE_SIZE = "199"


def longest(values):
    return max(values, key=len)


def longest_frame_answer(procedure_type: str) -> str:
    finding = (
        f'{{"category":"{longest(CATEGORIES[procedure_type])}",'
        f'"location":"{longest(LOCATIONS[procedure_type])}",'
        f'"risk":"medium","confidence":{LONGEST_CONFIDENCE},"size_mm":{LONGEST_SIZE},'
        f'"label":"{"W" * LABEL_MAX_CHARS}","description":"{"W" * DESCRIPTION_MAX_CHARS}",'
        f'"suggested_next_step":"{"W" * NEXT_STEP_MAX_CHARS}"}}'
    )
    findings = ",".join([finding] * MAX_FINDINGS)
    return f'{{"image_adequacy":"{longest(IMAGE_ADEQUACY)}","no_finding":false,"findings":[{findings}]}}'


def longest_live_answer(procedure_type: str) -> str:
    finding = (
        f'{{"category":"{longest(CATEGORIES[procedure_type])}",'
        f'"location":"{longest(LOCATIONS[procedure_type])}",'
        f'"risk":"medium","confidence":{LONGEST_LIVE_CONFIDENCE},"size_mm":{LONGEST_LIVE_SIZE},'
        f'"label":"{"W" * LIVE_LABEL_MAX_CHARS}"}}'
    )
    findings = ",".join([finding] * MAX_FINDINGS)
    return f'{{"image_adequacy":"{longest(IMAGE_ADEQUACY)}","no_finding":false,"findings":[{findings}]}}'


def longest_clarify_answer(procedure_type: str) -> str:
    return (
        f'{{"answer":"{"W" * ANSWER_MAX_CHARS}","confidence":{LONGEST_CONFIDENCE},'
        f'"relevant_category":"{longest(CATEGORIES[procedure_type])}",'
        f'"relevant_location":"{longest(LOCATIONS[procedure_type])}",'
        f'"image_adequacy":"{longest(IMAGE_ADEQUACY)}"}}'
    )


LONGEST = {"frame": longest_frame_answer, "live": longest_live_answer, "clarify": longest_clarify_answer}


@pytest.fixture(scope="module")
def demo_tokenizer(demo_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)


@pytest.fixture(scope="module")
def grammars(demo_tokenizer):
    return GrammarCache(demo_tokenizer, len(demo_tokenizer), [demo_tokenizer.eos_token_id])


def accepts(grammars, procedure_type, kind, text, tokenizer):
    """Through the whole constraint (grammar + length masks), one character per token."""
    row = grammars.get(procedure_type, kind).row()
    tokens = [tokenizer.convert_tokens_to_ids("▁" if ch == " " else ch) for ch in text]
    return all(row.accept(token) for token in tokens) and row.is_completed()


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_the_longest_valid_answer_fits_in_max_new_tokens(grammars, demo_tokenizer, procedure_type, kind):
    answer = LONGEST[kind](procedure_type)
    assert accepts(grammars, procedure_type, kind, answer, demo_tokenizer), "the worst case must be a legal output"
    schemas.output_model(procedure_type, kind).model_validate_json(answer)
    assert answer.isascii()

    stop_token = 1
    assert len(answer) + stop_token <= MAX_NEW_TOKENS[kind]
    tokens = demo_tokenizer(answer, add_special_tokens=False)["input_ids"]
    assert len(tokens) + stop_token <= MAX_NEW_TOKENS[kind]


@pytest.mark.parametrize(
    "field, longer",
    [("confidence", "0.123"), ("size_mm", "199.99"), ("size_mm", "1999")],
)
def test_number_lengths_are_bounded_by_the_grammar(grammars, demo_tokenizer, field, longer):
    answer = longest_frame_answer("colonoscopy")
    value = LONGEST_CONFIDENCE if field == "confidence" else LONGEST_SIZE
    too_long = answer.replace(f'"{field}":{value}', f'"{field}":{longer}', 1)
    assert too_long != answer
    assert not accepts(grammars, "colonoscopy", "frame", too_long, demo_tokenizer)


@pytest.mark.parametrize("kind, bound", [("frame", LABEL_MAX_CHARS), ("live", LIVE_LABEL_MAX_CHARS)])
def test_text_lengths_are_bounded_by_the_constraint(grammars, demo_tokenizer, kind, bound):
    answer = LONGEST[kind]("colonoscopy")
    too_long = answer.replace("W" * bound, "W" * (bound + 1), 1)
    assert not accepts(grammars, "colonoscopy", kind, too_long, demo_tokenizer)


def test_every_ordinary_demo_token_is_at_least_one_byte(grammars, demo_tokenizer):
    """Step 2 of the argument, checked for the demo vocabulary."""
    info = grammars.tokenizer_info
    special = set(info.special_token_ids) | set(demo_tokenizer.all_special_ids)
    decoded = info.decoded_vocab
    ordinary = [i for i in range(len(decoded)) if i not in special]
    assert ordinary
    assert min(len(decoded[i]) for i in ordinary) >= 1


def test_max_new_tokens_is_not_wastefully_large():
    """A cap far above the worst case would only hide a broken bound."""
    for kind, build in LONGEST.items():
        worst = max(len(build(p)) for p in PROCEDURE_TYPES) + 1
        assert MAX_NEW_TOKENS[kind] - worst < 128, (kind, worst)
