"""Grammar masks stay cheap with a Gemma-3-sized vocabulary (262,144 tokens).

Every position of a long valid answer - every list full, every text at its bound - is
replayed through each grammar, fed one character at a time (the slowest way to write it)
and as multi-character tokens; each mask fill (xgrammar + the text-length AND) must take
<= 1 ms at the 99th percentile and <= 5 ms at most. The schemas of 2026-12-01, compiled
through xgrammar's JSON-Schema path, took up to 524 ms per fill on this answer shape
(29 s in total); ``benchmarks/run_grammar_mask_test.py`` measures both side by side.

Time is the thread's CPU time, the best of two fills per position: what the fill costs,
not how long another process kept the core busy (the suite must pass on a loaded machine).
"""

import statistics
import time

import pytest
import xgrammar as xgr

from analysis.engine.answer_grammar import answer_grammar
from analysis.engine.constraint import RowConstraint, TokenTexts
from analysis.engine.schemas import OUTPUT_KINDS, PROCEDURE_TYPES

from .synthetic_vocab import MODEL_VOCAB, character_tokens, greedy_tokens, long_answer, synthetic_tokenizer_info

P99_LIMIT_MS = 1.0
MAX_LIMIT_MS = 5.0


@pytest.fixture(scope="module")
def big_vocab():
    info = synthetic_tokenizer_info()
    return info, xgr.GrammarCompiler(info, cache_enabled=False), TokenTexts(info)


def fill_times_ms(row: RowConstraint, tokens: list[int]) -> list[float]:
    bitmask = xgr.allocate_token_bitmask(1, MODEL_VOCAB)
    times = []
    for token in tokens:
        best = min(_timed_fill(row, bitmask) for _ in range(2))
        times.append(best)
        assert row.accept(token), "the long answer must be valid for the grammar"
    times.append(min(_timed_fill(row, bitmask) for _ in range(2)))  # the stop-token position
    assert row.is_completed()
    return times


def _timed_fill(row, bitmask) -> float:
    started = time.thread_time_ns()
    row.fill(bitmask, 0)
    return (time.thread_time_ns() - started) / 1e6


@pytest.mark.slow
@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("procedure_type", PROCEDURE_TYPES)
def test_mask_fills_stay_under_a_millisecond(big_vocab, procedure_type, kind):
    _, compiler, texts = big_vocab
    grammar = answer_grammar(procedure_type, kind)
    compiled = compiler.compile_grammar(grammar.ebnf)
    masks = texts.masks(grammar.shortest_text_limit, max(grammar.text_limits.values()))
    answer = long_answer(procedure_type, kind)
    for feed in (character_tokens, greedy_tokens):
        tokens = feed(answer)
        times = sorted(fill_times_ms(RowConstraint(compiled, grammar.text_limits, masks), tokens))
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        summary = (f"{feed.__name__}: {len(times)} fills, p50 {statistics.median(times):.3f} ms, "
                   f"p99 {p99:.3f} ms, max {times[-1]:.3f} ms")
        assert p99 <= P99_LIMIT_MS, summary
        assert times[-1] <= MAX_LIMIT_MS, summary
