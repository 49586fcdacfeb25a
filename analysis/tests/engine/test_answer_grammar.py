"""The answer grammar (answer_grammar.py) and the per-row constraint (constraint.py): they
accept exactly the answers the schemas validate, within the bounds, in compact JSON."""

import json

import numpy as np
import pytest
import torch
import xgrammar as xgr
from hypothesis import HealthCheck, given, settings

from analysis.engine.answer_grammar import UnsupportedSchema, _Builder, _uint_up_to, answer_grammar
from analysis.engine.constraint import TokenTexts, pack_bits
from analysis.engine.grammar import GrammarCache
from analysis.engine.schemas import (
    LABEL_MAX_CHARS,
    LIVE_LABEL_MAX_CHARS,
    OUTPUT_KINDS,
    PROCEDURE_TYPES,
)

from .strategies import clarify_answers, frame_analyses, live_analyses

FINDING = {"category": "polyp", "location": "sigmoid_colon", "risk": "medium", "confidence": 0.7, "size_mm": 6.5,
           "label": "Sessile polyp", "description": "A small sessile polyp.", "suggested_next_step": "Consider it."}
LIVE_FINDING = {"category": "polyp", "location": "cecum", "risk": "low", "confidence": 70, "size_mm": 6,
                "label": "Polyp"}


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def frame_text(**finding) -> str:
    return compact({"image_adequacy": "adequate", "no_finding": False, "findings": [{**FINDING, **finding}]})


def live_text(**finding) -> str:
    return compact({"image_adequacy": "adequate", "no_finding": False, "findings": [{**LIVE_FINDING, **finding}]})


@pytest.fixture(scope="module")
def tokenizer(demo_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)


@pytest.fixture(scope="module")
def grammars(tokenizer):
    return GrammarCache(tokenizer, len(tokenizer), [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")])


def char_tokens(tokenizer, text):
    return [tokenizer.convert_tokens_to_ids("▁" if ch == " " else ch) for ch in text]


def accepts(grammars, tokenizer, procedure_type, kind, text, *, by_char=False) -> bool:
    row = grammars.get(procedure_type, kind).row()
    tokens = char_tokens(tokenizer, text) if by_char else tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    # (split_special_tokens: a label that happens to read "<unk>" is text the model spells
    # with ordinary pieces, not the special token the tokenizer would otherwise map it to.)
    return all(row.accept(token) for token in tokens) and row.is_completed()


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_every_grammar_compiles_and_lists_its_text_bounds(grammars, procedure_type, kind):
    answer = grammars.get(procedure_type, kind)
    assert answer.grammar.text_limits
    assert all(0 < limit <= 128 for limit in answer.grammar.text_limits.values())
    assert "{1," not in answer.grammar.ebnf, "bounded repetitions make xgrammar's masks slow; bounds go to TextLimits"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame_analyses())
def test_every_valid_frame_answer_is_accepted(grammars, tokenizer, drawn):
    procedure_type, analysis = drawn
    text = analysis.model_dump_json()
    assert accepts(grammars, tokenizer, procedure_type, "frame", text)
    assert accepts(grammars, tokenizer, procedure_type, "frame", text, by_char=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(live_analyses())
def test_every_valid_live_answer_is_accepted(grammars, tokenizer, drawn):
    procedure_type, analysis = drawn
    assert accepts(grammars, tokenizer, procedure_type, "live", analysis.model_dump_json())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clarify_answers())
def test_every_valid_clarify_answer_is_accepted(grammars, tokenizer, drawn):
    procedure_type, answer = drawn
    assert accepts(grammars, tokenizer, procedure_type, "clarify", answer.model_dump_json())


@pytest.mark.parametrize(
    "kind, text",
    [
        ("frame", '{"image_adequacy":"adequate","no_finding":true,"findings":[{"category":"polyp"}]}'),
        ("frame", '{"image_adequacy":"adequate","no_finding":false,"findings":[]}'),
        ("frame", '{"image_adequacy": "adequate","no_finding":true,"findings":[]}'),
        ("frame", frame_text(label="tab\there")),
        ("frame", frame_text(label="x" * (LABEL_MAX_CHARS + 1))),
        ("frame", frame_text(label="")),
        ("frame", frame_text(confidence=0.123)),
        ("frame", frame_text(confidence=1.01)),
        ("frame", frame_text(size_mm=200.5)),
        ("frame", frame_text(size_mm=6.25)),
        ("frame", frame_text(location="trachea")),
        ("frame", compact({"image_adequacy": "adequate", "no_finding": False, "findings": [FINDING] * 4})),
        ("live", live_text(confidence=101)),
        ("live", live_text(confidence=7.5)),
        ("live", live_text(size_mm=201)),
        ("live", live_text(label="x" * (LIVE_LABEL_MAX_CHARS + 1))),
        ("live", frame_text()),
    ],
    ids=["findings-with-no-finding", "no-findings-with-finding", "free-whitespace", "control-char", "label-too-long",
         "empty-label", "three-decimals", "confidence-above-1", "size-above-200", "size-two-decimals",
         "other-procedure-location", "four-findings", "live-confidence-101", "live-fraction", "live-size-201",
         "live-label-too-long", "live-with-prose"],
)
def test_it_refuses_what_the_schema_refuses(grammars, tokenizer, kind, text):
    assert not accepts(grammars, tokenizer, "colonoscopy", kind, text)
    assert not accepts(grammars, tokenizer, "colonoscopy", kind, text, by_char=True)


def test_a_text_field_takes_exactly_its_bound(grammars, tokenizer):
    assert accepts(grammars, tokenizer, "colonoscopy", "frame", frame_text(label="x" * LABEL_MAX_CHARS), by_char=True)
    assert accepts(grammars, tokenizer, "colonoscopy", "live", live_text(label="y" * LIVE_LABEL_MAX_CHARS))


def allowed(bitmask_row: torch.Tensor, vocab_size: int) -> set[int]:
    bits = np.unpackbits(bitmask_row.numpy().view(np.uint8), bitorder="little")[:vocab_size]
    return set(np.flatnonzero(bits).tolist())


def test_the_mask_stops_a_text_field_at_its_bound(grammars, tokenizer):
    answer = grammars.get("colonoscopy", "live")
    row = answer.row()
    prefix = live_text(label="z" * LIVE_LABEL_MAX_CHARS).split("z" * LIVE_LABEL_MAX_CHARS)[0] + "z" * 37
    for token in char_tokens(tokenizer, prefix):
        assert row.accept(token)
    bitmask = xgr.allocate_token_bitmask(1, answer.masks.texts.vocab_size)
    row.fill(bitmask, 0)
    texts = answer.masks.texts
    permitted = allowed(bitmask[0], texts.vocab_size)
    assert permitted, "the quote (or a short token) must remain"
    # Three characters left: nothing longer fits, and the closing quote is allowed.
    assert all(int(texts.first_len[token]) <= 3 for token in permitted)
    assert tokenizer.convert_tokens_to_ids('"') in permitted
    assert any(int(texts.first_len[token]) == 3 for token in permitted)


def test_special_tokens_are_never_allowed_inside_an_answer(grammars, tokenizer):
    """xgrammar would read <pad> or <start_of_image> as text; the decoder then drops them."""
    answer = grammars.get("other", "frame")
    row = answer.row()
    for token in char_tokens(tokenizer, '{"image_adequacy":"adequate","no_finding":false,"findings":[{"category":'
                                        '"polyp","location":"distal","risk":"low","confidence":0,"size_mm":null,'
                                        '"label":"ab'):
        assert row.accept(token)
    bitmask = xgr.allocate_token_bitmask(1, answer.masks.texts.vocab_size)
    row.fill(bitmask, 0)
    permitted = allowed(bitmask[0], answer.masks.texts.vocab_size)
    for special in tokenizer.all_special_ids + [tokenizer.convert_tokens_to_ids("<start_of_turn>")]:
        assert special not in permitted
    assert not row.accept(tokenizer.convert_tokens_to_ids("<image_soft_token>"))


@pytest.mark.parametrize("high", [0, 1, 7, 9, 10, 99, 100, 101, 199, 200, 255, 1000])
def test_integer_ranges_are_exact(high):
    info = xgr.TokenizerInfo([str(d) for d in range(10)] + ["", "x"], vocab_size=12, stop_token_ids=[10])
    compiled = xgr.GrammarCompiler(info, cache_enabled=False).compile_grammar(f'root ::= "x" ({_uint_up_to(high)})')
    for number in range(0, high + 60):
        matcher = xgr.GrammarMatcher(compiled)
        ok = matcher.accept_string("x" + str(number)) and matcher.is_completed()
        assert ok == (number <= high), number
    matcher = xgr.GrammarMatcher(compiled)
    assert not (matcher.accept_string("x07") and matcher.is_completed()), "no leading zeros"


@pytest.mark.parametrize(
    "node, message",
    [
        ({"type": "array", "items": {"type": "boolean"}}, "maxItems"),
        ({"type": "string"}, "pattern"),
        ({"type": "number", "minimum": 0, "maximum": 1}, "NUMBER_DECIMALS"),
        ({"type": "integer", "minimum": -5, "maximum": 5}, "minimum 0"),
        ({"type": "object", "properties": {"a": {"type": "boolean"}}, "required": []}, "required"),
        ({"oneOf": []}, "cannot translate"),
    ],
)
def test_a_schema_it_cannot_translate_is_refused_by_name(node, message):
    with pytest.raises(UnsupportedSchema, match=message):
        _Builder().items(node, "some_field")


def test_the_frame_grammar_shares_the_beginning_of_both_shapes():
    """"no finding" and "findings" answers start alike; factoring lets jump-forward insert
    the first key at once."""
    root = answer_grammar("colonoscopy", "frame").ebnf.splitlines()[0]
    assert root.startswith('root ::= "{\\"image_adequacy\\":"')
    assert root.count("image_adequacy") == 1


def test_token_texts_count_the_characters_around_quotes():
    vocab = ["", "ab", 'ab"', '","label":"xy', '"' + "q" * 50, "plain"]
    info = xgr.TokenizerInfo(vocab, vocab_size=len(vocab), stop_token_ids=[0])
    texts = TokenTexts(info)
    assert texts.first_len.tolist() == [0, 2, 2, 0, 0, 5]
    # '","label":"xy' closes the string, then holds the key "label" (5) and opens a value with 2.
    assert texts.in_run.tolist() == [0, 0, 0, 5, 0, 0]
    assert texts.out_run.tolist()[4] == 50  # opening a string with 50 characters
    masks = texts.masks(40, 60)
    assert not masks.ok_out[4] and masks.ok_in[4]


def test_pack_bits_matches_xgrammar_bit_order():
    allowed_tokens = np.zeros(70, dtype=bool)
    allowed_tokens[[0, 31, 32, 69]] = True
    packed = pack_bits(allowed_tokens, xgr.get_bitmask_shape(1, 70)[1])
    logits = torch.zeros((1, 70))
    xgr.apply_token_bitmask_inplace(logits, packed[None])
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [0, 31, 32, 69]
