"""Grammar-forced JSON: compile the answer schema with xgrammar, mask logits during
``generate`` so that only tokens that keep the output schema-valid can be chosen.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from typing import Any

import torch
import transformers
import xgrammar as xgr

# Compact JSON, no free whitespace: every token goes to content, and the worst-case
# output length (schemas.MAX_NEW_TOKENS) does not have to budget for spaces.
SEPARATORS = (",", ":")


def grammar_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as handed to xgrammar.

    Our string fields carry both a ``pattern`` (which already bounds the length) and
    ``minLength``/``maxLength`` (for other consumers). xgrammar uses the pattern and warns
    on stderr that it ignores the lengths; dropping them here keeps logs clean. The
    pattern must encode the same bound - test_schemas checks it does.
    """
    schema = copy.deepcopy(schema)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            if "pattern" in node:
                node.pop("minLength", None)
                node.pop("maxLength", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(schema)
    return schema


@functools.cache
def _mask_backend(device_type: str) -> str:
    """xgrammar's default CUDA kernel is Triton's; GPU hosts without Triton get the plain
    torch implementation instead of an ImportError in the middle of generate()."""
    if device_type == "cpu":
        return "cpu"
    if device_type == "cuda":
        try:
            import triton  # noqa: F401

            return "triton"
        except ImportError:
            return "torch_native"
    return "torch_native"


class GrammarCache:
    """Compiled grammars for one tokenizer, one per schema, compiled once.

    ``vocab_size`` must be the *model's* vocabulary size (``text_config.vocab_size``), not
    ``len(tokenizer)``: Gemma 3's embedding matrix is padded beyond the tokenizer (262208
    vs 262145 for the real model), and the bitmask has to cover every logit the model emits.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]):
        self.tokenizer_info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_token_ids)
        )
        self.vocab_size = vocab_size
        self.stop_token_ids = list(stop_token_ids)
        # xgrammar's own cross-grammar cache hashes grammar FSMs, and in xgrammar 0.2.x that
        # hasher aborts ("per_rule_fsm_hashes ... Check failed") on our pattern-bearing
        # schemas (upstream mlc-ai/xgrammar PR #647). We cache per schema ourselves below,
        # so its cache adds nothing for us: switch it off.
        self._compiler = xgr.GrammarCompiler(self.tokenizer_info, cache_enabled=False)
        self._compiled: dict[str, xgr.CompiledGrammar] = {}
        self._lock = threading.Lock()
        self.compile_count = 0  # observable by tests: compile once per schema

    def get(self, schema_text: str) -> xgr.CompiledGrammar:
        compiled = self._compiled.get(schema_text)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._compiled.get(schema_text)
            if compiled is None:
                schema = grammar_schema(json.loads(schema_text))
                compiled = self._compiler.compile_json_schema(
                    json.dumps(schema),
                    any_whitespace=False,
                    separators=SEPARATORS,
                    strict_mode=True,
                )
                self._compiled[schema_text] = compiled
                self.compile_count += 1
        return compiled


class GrammarLogitsProcessor(transformers.LogitsProcessor):
    """One GrammarMatcher per batch row and one shared token bitmask.

    Use a fresh instance per ``generate`` call: the matchers carry the rows' state.
    ``rejected[i]`` becomes True if row i ever produced a token its grammar refused (it
    cannot when the mask was applied; kept so that such a row is reported, not trusted).
    """

    def __init__(self, compiled_grammar: xgr.CompiledGrammar, batch_size: int):
        self.vocab_size = compiled_grammar.tokenizer_info.vocab_size
        self.matchers = [xgr.GrammarMatcher(compiled_grammar) for _ in range(batch_size)]
        self.bitmask = xgr.allocate_token_bitmask(batch_size, self.vocab_size)
        self.rejected = [False] * batch_size
        self._batch_matcher = xgr.BatchGrammarMatcher() if batch_size > 1 else None
        self._started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.matchers):
            raise RuntimeError(
                f"Grammar processor was built for {len(self.matchers)} rows, "
                f"generate passed {input_ids.shape[0]}."
            )
        if scores.shape[-1] != self.vocab_size:
            raise RuntimeError(
                f"Model emits {scores.shape[-1]} logits but the grammar covers "
                f"{self.vocab_size}: build the TokenizerInfo with the model config's vocab size."
            )
        if self._started:
            # The first call sees only the prompt; afterwards the last column is the token
            # chosen at the previous step.
            last_tokens = input_ids[:, -1].tolist()
            for row, matcher in enumerate(self.matchers):
                if matcher.is_terminated() or self.rejected[row]:
                    continue
                if not matcher.accept_token(last_tokens[row]):
                    self.rejected[row] = True
        self._started = True

        active = [
            row
            for row, matcher in enumerate(self.matchers)
            if not matcher.is_terminated() and not self.rejected[row]
        ]
        # Finished rows are padded by generate whatever we do; an all-allowed mask keeps
        # their logits finite so sampling never sees a row of -inf.
        xgr.reset_token_bitmask(self.bitmask)
        if active:
            if self._batch_matcher is not None and len(active) > 1:
                self._batch_matcher.batch_fill_next_token_bitmask(
                    [self.matchers[row] for row in active], self.bitmask, indices=active
                )
            else:
                for row in active:
                    self.matchers[row].fill_next_token_bitmask(self.bitmask, row)
        xgr.apply_token_bitmask_inplace(
            scores, self.bitmask.to(scores.device, non_blocking=True), backend=_mask_backend(scores.device.type)
        )
        return scores

    def finished_cleanly(self, row: int) -> bool:
        """The row's output is a complete grammar sentence ended by a stop token."""
        return self.matchers[row].is_terminated() and not self.rejected[row]
