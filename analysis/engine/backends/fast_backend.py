"""The fast engine as an analyzer: same interface, same weights, same answers.

``FastAnalyzer`` wraps a loaded ``TransformersAnalyzer`` (the reference path): it reuses
its model, processor, tokenizer and compiled grammars, and runs frames through
``engine/fast`` - static KV cache, its own decode loop, CUDA graphs, jump-forward, prefix
cache, image preprocessing on the device. With jump-forward off its greedy answers are
token-for-token those of the reference path (tested on the demo model).

It falls back to the reference path, with a log line and never losing a frame, for what
the fast path does not do: a model it does not reproduce, sampling, a prompt or answer
that does not fit its cache, an error in the fast path. CUDA out-of-memory halves how many rows it decodes at once, down to one, then
falls back as well.

``batcher()`` gives the step-wise interface (continuous batching) that a scheduler drives:
submit frames at any time, call ``step()``, collect results as rows finish.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..images import to_pil_rgb
from ..prompts import sanitize_question
from ..schemas import OUTPUT_KINDS, PROCEDURE_TYPES, max_new_tokens_for
from ..types import AnalysisResult, ClarifyResult, FrameInput, Provenance
from .common import (
    check_analyze_arguments,
    check_frames,
    check_kind,
    check_procedure_type,
    clarify_result,
    frame_result,
    provenance,
)
from .transformers_backend import TransformersAnalyzer

logger = logging.getLogger(__name__)

# A model whose sliding window is at least this long gets its window as the cache size;
# a smaller window (the demo model's 128) cannot hold a prompt, so the cache is sized for
# the longest prompt + answer and the local layers are masked to their window instead.
MIN_WINDOW_CONTEXT = 512


def frame_array(image: Any) -> np.ndarray:
    """HxWx3 uint8 RGB array of a frame (the fast path's input)."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.asarray(to_pil_rgb(image))


@dataclass
class _Ticket:
    number: int
    frame: FrameInput
    procedure_type: str
    kind: str
    question: str | None
    submitted_at: float
    image: np.ndarray  # the frame as HxWx3 uint8 RGB
    rows_in_flight: int = 0


class FastAnalyzer:
    def __init__(self, reference: TransformersAnalyzer):
        """The fast engine over ``reference``'s loaded model, configured by its config."""
        from ..fast.decoder import Decoder, DecoderOptions
        from ..fast.model import Gemma3Runner, UnsupportedModel

        self.reference = reference
        self.config = reference.config
        self.decoder = None
        self.unavailable_reason: str | None = None
        self._lock = threading.Lock()
        # The decoder's rows belong to one batcher at a time: a whole analyze()/clarify()
        # call, or a caller driving its own batcher step by step, holds this (re-entrant,
        # so that caller may still call analyze()). Two threads of one worker process (the
        # embedded worker) then take turns instead of stepping each other's rows.
        self.exclusive = threading.RLock()
        config = self.config
        try:
            runner = Gemma3Runner(reference.model)
            capacity = config.context_tokens or self._default_capacity(runner, reference)
            options = DecoderOptions(slots=config.batch_size, capacity=capacity, jump_forward=config.jump_forward,
                                     prefix_cache=config.prefix_cache, cuda_graphs=config.cuda_graphs)
            self.decoder = Decoder(runner=runner, processor=reference.processor, grammars=reference.grammars,
                                   stop_token_ids=reference.stop_token_ids, pad_token_id=reference.pad_token_id,
                                   options=options)
        except (UnsupportedModel, ValueError) as error:
            self.unavailable_reason = str(error)
            logger.warning("Fast engine unavailable (%s); this worker uses the reference path.", error)
        self._row_limit = config.batch_size
        self.fallbacks = 0  # frames the reference path answered instead (observable by tests)

    @staticmethod
    def _default_capacity(runner, reference: TransformersAnalyzer) -> int:
        window = runner.shape.sliding_window
        if window and window >= MIN_WINDOW_CONTEXT:
            return int(window)
        from ..fast.prefix import PromptLayouts

        layouts = PromptLayouts(reference.processor, runner)
        longest = max(len(layouts.layout(p, k, "?" if k == "clarify" else None).ids) + max_new_tokens_for(k)
                      for p in PROCEDURE_TYPES for k in OUTPUT_KINDS)
        return -(-(longest + 64) // 64) * 64  # room for a clarify question, in whole 64s

    # ------------------------------------------------------------------ interface

    @property
    def model(self):
        return self.reference.model

    @property
    def grammars(self):
        return self.reference.grammars

    @property
    def provenance_base(self) -> Provenance:
        return self._provenance("frame")

    def warm_up(self) -> dict[str, Any]:
        """Compile (or load) every grammar, fill the prefix cache, capture the CUDA graphs,
        and log how long it took."""
        started = time.perf_counter()
        report: dict[str, Any] = {"grammars": self.reference.grammars.warm_up(PROCEDURE_TYPES, OUTPUT_KINDS)}
        if self.decoder is not None:
            with self._lock, self.reference._cpu_thread_limit():
                report.update(self.decoder.warm_up(PROCEDURE_TYPES, OUTPUT_KINDS))
        report["seconds"] = round(time.perf_counter() - started, 3)
        logger.info("Analyzer warm-up (%s engine) took %.1f s: %s", self.engine_name, report["seconds"], report)
        return report

    @property
    def engine_name(self) -> str:
        return "fast" if self.decoder is not None else "reference"

    def analyze(self, frames: list[FrameInput], procedure_type: str, kind: str = "frame") -> list[AnalysisResult]:
        check_analyze_arguments(frames, procedure_type, kind)
        if not frames:
            return []
        if self._reference_only():
            return self.reference.analyze(frames, procedure_type, kind)
        with self.exclusive:
            batcher = self.batcher()
            tickets = [batcher.submit(frame, procedure_type, kind) for frame in frames]
            results = batcher.drain()
        return [results[ticket] for ticket in tickets]

    def clarify(self, frame: FrameInput, procedure_type: str, question: str) -> ClarifyResult:
        check_procedure_type(procedure_type)
        check_frames([frame])
        question = sanitize_question(question)
        if self._reference_only():
            return self.reference.clarify(frame, procedure_type, question)
        with self.exclusive:
            batcher = self.batcher()
            ticket = batcher.submit(frame, procedure_type, "clarify", question)
            return batcher.drain()[ticket]

    def close(self) -> None:
        self.decoder = None
        self.reference.close()

    def batcher(self) -> ContinuousBatcher:
        """A step-wise interface over this analyzer's decoder (one user at a time: hold
        ``exclusive`` while driving it from a thread that others share the analyzer with)."""
        return ContinuousBatcher(self)

    def _reference_only(self) -> bool:
        return self.decoder is None or self.config.do_sample

    def _provenance(self, kind: str, **params: Any) -> Provenance:
        base = self.reference.result_provenance(kind)
        generation = {**base.generation_params, **params}
        if self.decoder is not None:
            options = self.decoder.options
            generation.update(
                engine="fast (static KV cache, own decode loop)",
                jump_forward=options.jump_forward,
                prefix_cache=options.prefix_cache,
                cuda_graphs=bool(self.decoder.steps.graphs),
                context_tokens=options.capacity,
                preprocessing="on device (PIL-exact bilinear)",
            )
        generation.update(params)
        return provenance(base, generation_params=generation)


class ContinuousBatcher:
    """Submit frames at any time; each ``step()`` admits waiting frames into free rows,
    runs one decoding step, and returns the results of the rows that finished."""

    def __init__(self, analyzer: FastAnalyzer):
        self.analyzer = analyzer
        self._numbers = itertools.count()
        self._waiting: list[_Ticket] = []
        self._active: dict[int, _Ticket] = {}

    @property
    def idle(self) -> bool:
        return not self._waiting and not self._active

    def submit(self, frame: FrameInput, procedure_type: str, kind: str = "frame", question: str | None = None) -> int:
        check_procedure_type(procedure_type)
        if kind == "clarify":
            question = sanitize_question(question or "")
        else:
            check_kind(kind)
        check_frames([frame])
        # A bad image is the caller's error: raised here, before any work.
        ticket = _Ticket(next(self._numbers), frame, procedure_type, kind, question, time.perf_counter(),
                         frame_array(frame.image))
        self._waiting.append(ticket)
        return ticket.number

    def drain(self) -> dict[int, AnalysisResult | ClarifyResult]:
        results: dict[int, AnalysisResult | ClarifyResult] = {}
        while not self.idle:
            results.update(self.step())
        return results

    def step(self) -> dict[int, AnalysisResult | ClarifyResult]:
        import torch

        analyzer = self.analyzer
        done: dict[int, AnalysisResult | ClarifyResult] = {}
        with analyzer._lock, analyzer.reference._cpu_thread_limit():
            decoder = analyzer.decoder
            if decoder is None:  # closed, or never available: everything goes to the reference path
                return self._fallback_all("the fast engine is unavailable")
            try:
                finished = self._admit(decoder, done)
                finished += decoder.step()
            except torch.cuda.OutOfMemoryError:
                return self._out_of_memory(decoder)
            except Exception as error:  # noqa: BLE001 - the frames are answered by the reference path
                logger.exception("Fast engine step failed; answering its frames with the reference path")
                decoder.abandon()
                return self._fallback_all(f"fast engine error ({type(error).__name__})")
            for row in finished:
                ticket = self._active.pop(row.request.tag)
                if row.overflow:
                    done[ticket.number] = self._reference(ticket, "the answer outgrew the fast engine's context")
                else:
                    done[ticket.number] = self._result(ticket, row)
        return done

    def _admit(self, decoder, done) -> list:
        from ..fast.decoder import Request

        room = min(decoder.free_slots, self.analyzer._row_limit - len(decoder.rows), len(self._waiting))
        if room <= 0:
            return []
        admitting, self._waiting = self._waiting[:room], self._waiting[room:]
        requests = []
        for ticket in admitting:
            request = Request(image=ticket.image, procedure_type=ticket.procedure_type,
                              kind=ticket.kind, question=ticket.question,
                              max_new_tokens=self.analyzer.reference._max_new_tokens(ticket.kind), tag=ticket.number)
            if not decoder.prompt_fits(request):
                done[ticket.number] = self._reference(ticket, "the prompt does not fit the fast engine's context")
                continue
            self._active[ticket.number] = ticket
            requests.append(request)
        for ticket in admitting:
            ticket.rows_in_flight = len(decoder.rows) + len(requests)
        rows = decoder.admit(requests)
        finished = [row for row in rows if row.done]
        return finished

    def _result(self, ticket: _Ticket, row) -> AnalysisResult | ClarifyResult:
        decoder = self.analyzer.decoder
        raw = decoder.text(row)
        latency_ms = round((row.finished_at - ticket.submitted_at) * 1000)
        base = self.analyzer._provenance(ticket.kind, forward_passes=row.forward_passes, decisions=row.decisions,
                                         batch_size=ticket.rows_in_flight)
        if ticket.kind == "clarify":
            return clarify_result(ticket.frame, ticket.question or "", raw, base, latency_ms, ticket.procedure_type,
                                  row.failure)
        return frame_result(ticket.frame, raw, base, latency_ms, ticket.procedure_type, row.failure, ticket.kind)

    def _reference(self, ticket: _Ticket, why: str) -> AnalysisResult | ClarifyResult:
        logger.info("Frame %s answered by the reference path: %s.", ticket.frame.frame_id, why)
        self.analyzer.fallbacks += 1
        reference = self.analyzer.reference
        if ticket.kind == "clarify":
            result = reference.clarify(ticket.frame, ticket.procedure_type, ticket.question or "")
        else:
            [result] = reference.analyze([ticket.frame], ticket.procedure_type, ticket.kind)
        params = {**result.provenance.generation_params, "engine": f"reference (fallback: {why})"}
        result.provenance = provenance(result.provenance, generation_params=params)
        return result

    def _fallback_all(self, why: str) -> dict[int, AnalysisResult | ClarifyResult]:
        tickets = list(self._active.values()) + self._waiting
        self._active, self._waiting = {}, []
        return {ticket.number: self._reference(ticket, why) for ticket in tickets}

    def _out_of_memory(self, decoder) -> dict[int, AnalysisResult | ClarifyResult]:
        """Start the interrupted rows again with half as many rows at once; at one row,
        hand everything to the reference path (which raises OutOfMemory if even that fails)."""
        import torch

        decoder.abandon()
        self._waiting = sorted(self._active.values(), key=lambda t: t.number) + self._waiting
        self._active = {}
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        limit = self.analyzer._row_limit
        if limit <= 1:
            logger.warning("CUDA out of memory with one row in the fast engine; using the reference path.")
            return self._fallback_all("CUDA out of memory in the fast engine")
        self.analyzer._row_limit = max(1, limit // 2)
        logger.warning("CUDA out of memory with %d rows in the fast engine; retrying with %d.", limit,
                       self.analyzer._row_limit)
        return {}
