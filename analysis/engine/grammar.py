"""Grammar-forced answers: the compiled answer grammars of one tokenizer, and the logits
processor of the reference ``generate`` path.

Grammars come from ``answer_grammar`` (EBNF built from the answer schemas) and are
compiled once per (procedure type, kind) and tokenizer; compiled grammars are also kept on
disk (xgrammar's ``CompiledGrammar`` serialisation), so a restarted GPU worker loads them
instead of compiling. The text-length limits the grammar leaves out are enforced by
``constraint.RowConstraint`` in the same bitmask.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import transformers
import xgrammar as xgr

from .answer_grammar import AnswerGrammar, answer_grammar
from .constraint import RowConstraint, TextMasks, TokenTexts

logger = logging.getLogger(__name__)


def tokenizer_info_for(tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> xgr.TokenizerInfo:
    """xgrammar's view of ``tokenizer``, with every special token blanked.

    ``TokenizerInfo.from_huggingface`` treats tokens such as ``<pad>`` or
    ``<start_of_image>`` as ordinary text (their spelling is printable ASCII), so a grammar
    would let the model write them inside a text field - where the decoder then drops them,
    leaving a shorter (possibly empty) string than the grammar counted. Blank tokens are
    xgrammar's special tokens: never allowed inside an answer; the stop tokens still end it.

    ``vocab_size`` must be the *model's* vocabulary size (``text_config.vocab_size``), not
    ``len(tokenizer)``: Gemma 3's embedding matrix is padded beyond the tokenizer (262208
    vs 262145 for the real model), and the bitmask has to cover every logit the model emits.
    """
    detected = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_token_ids))
    meta = json.loads(detected.dump_metadata())
    encoded = [""] * vocab_size
    for token, index in tokenizer.get_vocab().items():
        if index < vocab_size:
            encoded[index] = token
    special = set(getattr(tokenizer, "all_special_ids", []))
    special |= {index for index, added in getattr(tokenizer, "added_tokens_decoder", {}).items() if added.special}
    for index in special:
        if 0 <= index < vocab_size:
            encoded[index] = ""
    return xgr.TokenizerInfo(
        encoded,
        vocab_type=xgr.VocabType(meta["vocab_type"]),
        vocab_size=vocab_size,
        stop_token_ids=list(stop_token_ids),
        add_prefix_space=bool(meta["add_prefix_space"]),
    )


@functools.cache
def _mask_backend(device_type: str) -> str:
    """xgrammar's default CUDA kernel is Triton's; GPU hosts without Triton get the plain
    torch implementation instead of an ImportError in the middle of decoding."""
    if device_type == "cpu":
        return "cpu"
    if device_type == "cuda":
        try:
            import triton  # noqa: F401

            return "triton"
        except ImportError:
            return "torch_native"
    return "torch_native"


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Set the logits of disallowed tokens to -inf, in place, on the logits' device."""
    xgr.apply_token_bitmask_inplace(
        logits, bitmask.to(logits.device, non_blocking=True), backend=_mask_backend(logits.device.type)
    )


@dataclass(frozen=True)
class CompiledAnswer:
    """Everything needed to constrain one answer of (procedure type, kind)."""

    procedure_type: str
    kind: str
    compiled: xgr.CompiledGrammar
    grammar: AnswerGrammar
    masks: TextMasks

    def row(self) -> RowConstraint:
        return RowConstraint(self.compiled, self.grammar.text_limits, self.masks)


def _xgrammar_version() -> str:
    try:
        return metadata.version("xgrammar")
    except metadata.PackageNotFoundError:
        return "unknown"


class GrammarCache:
    """Compiled answer grammars for one tokenizer, compiled once per (procedure, kind).

    ``cache_dir``: where compiled grammars are kept between processes (None: memory only).
    A file is keyed by the grammar text, the tokenizer's vocabulary and xgrammar's version,
    so a changed schema, tokenizer or library never loads a stale grammar.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int], cache_dir: str | None = None):
        self.tokenizer_info = tokenizer_info_for(tokenizer, vocab_size, stop_token_ids)
        self.vocab_size = vocab_size
        self.stop_token_ids = list(stop_token_ids)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        # xgrammar's own cross-grammar cache is off: we cache per grammar ourselves, and in
        # xgrammar 0.2.8 its FSM hasher aborted on pattern-bearing schemas (mlc-ai/xgrammar#647).
        self._compiler = xgr.GrammarCompiler(self.tokenizer_info, cache_enabled=False)
        self._texts = TokenTexts(self.tokenizer_info)
        self._masks: dict[tuple[int, int], TextMasks] = {}
        self._compiled: dict[tuple[str, str], CompiledAnswer] = {}
        self._lock = threading.Lock()
        self._fingerprint: str | None = None
        self.compile_count = 0  # observable by tests: compile once per grammar
        self.disk_loads = 0

    @property
    def token_texts(self) -> TokenTexts:
        return self._texts

    def get(self, procedure_type: str, kind: str) -> CompiledAnswer:
        key = (procedure_type, kind)
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                grammar = answer_grammar(procedure_type, kind)
                limits = (grammar.shortest_text_limit, max(grammar.text_limits.values(), default=0))
                masks = self._masks.get(limits)
                if masks is None:
                    masks = self._masks[limits] = self._texts.masks(*limits)
                compiled = CompiledAnswer(procedure_type, kind, self._load_or_compile(grammar.ebnf), grammar, masks)
                self._compiled[key] = compiled
        return compiled

    def warm_up(self, procedure_types, kinds) -> dict[str, Any]:
        """Compile (or load) every grammar now; returns what it did, for the start-up log."""
        started = time.perf_counter()
        compiled_before, loaded_before = self.compile_count, self.disk_loads
        for procedure_type in procedure_types:
            for kind in kinds:
                self.get(procedure_type, kind)
        return {
            "grammars": len(self._compiled),
            "compiled": self.compile_count - compiled_before,
            "loaded_from_disk": self.disk_loads - loaded_before,
            "seconds": round(time.perf_counter() - started, 3),
        }

    # ------------------------------------------------------------------ disk cache

    def _cache_path(self, ebnf: str) -> Path | None:
        if self.cache_dir is None:
            return None
        if self._fingerprint is None:
            self._fingerprint = hashlib.sha256(self.tokenizer_info.serialize_json().encode()).hexdigest()
        key = hashlib.sha256(f"{_xgrammar_version()}\n{self._fingerprint}\n{ebnf}".encode()).hexdigest()
        return self.cache_dir / f"{key[:32]}.json"

    def _load_or_compile(self, ebnf: str) -> xgr.CompiledGrammar:
        path = self._cache_path(ebnf)
        if path is not None and path.is_file():
            try:
                compiled = xgr.CompiledGrammar.deserialize_json(path.read_text(), self.tokenizer_info)
                self.disk_loads += 1
                return compiled
            except Exception as error:  # noqa: BLE001 - a bad cache file is rebuilt, never fatal
                logger.warning("Compiled grammar cache file %s is unusable (%s); compiling again.", path, error)
        compiled = self._compiler.compile_grammar(ebnf)
        self.compile_count += 1
        if path is not None:
            self._store(path, compiled.serialize_json())
        return compiled

    @staticmethod
    def _store(path: Path, text: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
                handle.write(text)
            os.replace(handle.name, path)
        except OSError as error:
            logger.warning("Could not keep the compiled grammar in %s (%s); it is compiled again next start.",
                           path.parent, error)


class GrammarLogitsProcessor(transformers.LogitsProcessor):
    """The reference path's constraint: one ``RowConstraint`` per batch row, one bitmask.

    Use a fresh instance per ``generate`` call: the rows carry the answers' state.
    ``rejected[i]`` becomes True if row i ever produced a token its constraint refused (it
    cannot when the mask was applied; kept so that such a row is reported, not trusted).
    """

    def __init__(self, answer: CompiledAnswer, batch_size: int):
        self.vocab_size = answer.compiled.tokenizer_info.vocab_size
        self.rows = [answer.row() for _ in range(batch_size)]
        self.bitmask = xgr.allocate_token_bitmask(batch_size, self.vocab_size)
        self._started = False

    @property
    def rejected(self) -> list[bool]:
        return [row.rejected for row in self.rows]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.rows):
            raise RuntimeError(
                f"Grammar processor was built for {len(self.rows)} rows, generate passed {input_ids.shape[0]}."
            )
        if scores.shape[-1] != self.vocab_size:
            raise RuntimeError(
                f"Model emits {scores.shape[-1]} logits but the grammar covers "
                f"{self.vocab_size}: build the TokenizerInfo with the model config's vocab size."
            )
        if self._started:
            # The first call sees only the prompt; afterwards the last column is the token
            # chosen at the previous step.
            for row, token in zip(self.rows, input_ids[:, -1].tolist(), strict=True):
                if not row.is_terminated() and not row.rejected and not row.accept(token):
                    row.reject()
        self._started = True
        # Finished rows are padded by generate whatever we do; an all-allowed mask keeps
        # their logits finite so sampling never sees a row of -inf.
        xgr.reset_token_bitmask(self.bitmask)
        for index, row in enumerate(self.rows):
            if not row.is_terminated() and not row.rejected:
                row.fill(self.bitmask, index)
        apply_bitmask(scores, self.bitmask)
        return scores
