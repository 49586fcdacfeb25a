"""Local inference with transformers: MedGemma, or the demo model on the same path.

This is the *reference* path: per batch, chat template with the image -> processor (left
padding) -> one Hugging Face ``generate`` call, greedy, with a logits processor forcing the
answer grammar (``grammar.py``) and stopping on ``<end_of_turn>`` or EOS -> per-row decode
-> validation. The fast engine (``backends/fast_backend.py``) runs the same model with its
own decode loop and falls back to this class for anything it does not support.

CUDA out-of-memory is handled here, inside ``analyze``: the batch is halved and retried
down to one frame, and the halved size is remembered for the analyzer's lifetime (the
memory that ran out will be just as short next time). Only a single frame that does not
fit raises ``OutOfMemory``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import EngineConfig
from ..errors import AnalyzerUnavailable, OutOfMemory
from ..images import to_pil_rgb
from ..prompts import (
    PROMPT_VERSION,
    PromptParts,
    messages_for,
    prompt_parts,
    prompt_version_for,
    sanitize_question,
)
from ..revision import model_revision
from ..schemas import max_new_tokens_for
from ..types import AnalysisResult, ClarifyResult, FrameInput, Provenance
from .common import (
    check_analyze_arguments,
    check_frames,
    check_procedure_type,
    clarify_result,
    frame_result,
    per_frame_latency_ms,
    provenance,
)

logger = logging.getLogger(__name__)

END_OF_TURN = "<end_of_turn>"


def resolve_device(requested: str):
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise AnalyzerUnavailable(
            "ANALYZER device is 'cuda' but this process sees no CUDA GPU; "
            "use device 'auto' or 'cpu', or run the worker on a GPU machine."
        )
    return torch.device(requested)


class _Row:
    """One generated answer before validation."""

    __slots__ = ("failure", "raw")

    def __init__(self, raw: str, failure: str | None):
        self.raw = raw
        self.failure = failure


class TransformersAnalyzer:
    def __init__(
        self,
        config: EngineConfig,
        *,
        model_location: str,
        backend_name: str = "transformers",
        model_id: str | None = None,
        is_demo: bool = False,
        cpu_threads: int | None = None,
    ):
        """Load the model at ``model_location`` (``_load``).

        ``cpu_threads``: torch intra-op threads while generating on CPU (None: torch's
        default). The demo model passes 1: its matrices are tiny, so more threads only add
        synchronisation, and when other processes compete for the cores OpenMP's
        spin-waiting threads made each step up to 10x slower in our measurements.
        """
        import torch

        self.config = config
        self.cpu_threads = cpu_threads
        self.device = resolve_device(config.device)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        processor, model = self._load(model_location, config.revision)
        self.processor = processor
        self.model = model
        tokenizer = processor.tokenizer
        # Batched prompts must end where generation starts: pad on the left.
        tokenizer.padding_side = "left"
        self.tokenizer = tokenizer
        self.stop_token_ids = self._stop_token_ids()
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_token_ids[0]
        )

        from ..grammar import GrammarCache

        text_config = getattr(model.config, "text_config", model.config)
        self.vocab_size = int(text_config.vocab_size)
        self.grammars = GrammarCache(tokenizer, self.vocab_size, self.stop_token_ids,
                                     cache_dir=config.grammar_cache_dir)

        if config.max_new_tokens is not None and config.max_new_tokens < max_new_tokens_for("frame"):
            logger.warning(
                "max_new_tokens=%d is below the longest valid frame answer (%d tokens): long "
                "answers will be cut off and reported as failed.",
                config.max_new_tokens,
                max_new_tokens_for("frame"),
            )
        self._batch_limit = config.batch_size
        self._lock = threading.Lock()
        if config.do_sample and config.seed is not None:
            torch.manual_seed(config.seed)

        self._base = Provenance(
            backend=backend_name,
            model_id=model_id or model_location,
            model_revision=model_revision(model_location, config.revision, model.config),
            prompt_version=PROMPT_VERSION,
            generation_params=self._generation_params("frame"),
            latency_ms=0,
            is_demo=is_demo,
        )

    # ----------------------------------------------------------------- loading

    def _load(self, location: str, revision: str | None):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        local = Path(location).is_dir()
        common: dict[str, Any] = {"revision": revision}
        if local:
            common["local_files_only"] = True
        try:
            processor = AutoProcessor.from_pretrained(location, **common)
            model_kwargs: dict[str, Any] = {"dtype": self.dtype}
            if self.device.type == "cuda":
                # Materialise the weights straight on the GPU, not via host memory.
                model_kwargs["device_map"] = {"": str(self.device)}
            model = AutoModelForImageTextToText.from_pretrained(location, **common, **model_kwargs)
        except (OSError, ValueError) as error:
            hint = (
                "check that the directory holds a complete checkpoint"
                if local
                else "download it first (e.g. `hf download` on a machine with access) and point "
                "the model setting at the local directory, or check the hub id and revision"
            )
            raise AnalyzerUnavailable(f"Could not load the model {location!r}: {error}. Fix: {hint}.") from error
        if self.device.type != "cuda":
            model = model.to(self.device)
        model.eval()
        return processor, model

    def _stop_token_ids(self) -> list[int]:
        ids: list[int] = []
        eos = self.tokenizer.eos_token_id
        if eos is not None:
            ids.append(int(eos))
        end_of_turn = self.tokenizer.convert_tokens_to_ids(END_OF_TURN)
        if isinstance(end_of_turn, int) and end_of_turn != self.tokenizer.unk_token_id:
            ids.append(end_of_turn)
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for token in configured if isinstance(configured, list) else [configured]:
            if token is not None and int(token) not in ids:
                ids.append(int(token))
        if not ids:
            raise AnalyzerUnavailable("The tokenizer defines neither an EOS nor an <end_of_turn> token.")
        return ids

    def _max_new_tokens(self, kind: str) -> int:
        return self.config.max_new_tokens or max_new_tokens_for(kind)

    def _generation_params(self, kind: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "do_sample": self.config.do_sample,
            "num_beams": 1,
            "max_new_tokens": self._max_new_tokens(kind),
            "constrained_decoding": "xgrammar answer grammar (compact JSON) + exact text-length masks",
            "engine": "reference (transformers generate)",
            "stop_token_ids": list(self.stop_token_ids),
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": self.device.type,
            "batch_size": self.config.batch_size,
        }
        if self.config.do_sample:
            params.update(temperature=self.config.temperature, top_k=0, top_p=1.0, seed=self.config.seed)
        return params

    # ---------------------------------------------------------------- interface

    @property
    def provenance_base(self) -> Provenance:
        return self._base

    @property
    def engine_name(self) -> str:
        return "reference"

    def warm_up(self) -> dict[str, Any]:
        """Compile (or load) every answer grammar now, and log how long it took."""
        from ..schemas import OUTPUT_KINDS, PROCEDURE_TYPES

        report = {"grammars": self.grammars.warm_up(PROCEDURE_TYPES, OUTPUT_KINDS)}
        logger.info("Analyzer warm-up (reference engine): %s", report)
        return report

    def analyze(self, frames: list[FrameInput], procedure_type: str, kind: str = "frame") -> list[AnalysisResult]:
        check_analyze_arguments(frames, procedure_type, kind)
        if not frames:
            return []
        parts = prompt_parts(procedure_type, kind)
        results: list[AnalysisResult] = []
        with self._lock:
            for chunk, rows, latency_ms in self._generate_chunks(frames, [parts] * len(frames), procedure_type, kind):
                base = self.result_provenance(kind, batch_size=len(chunk))
                for frame, row in zip(chunk, rows, strict=True):
                    results.append(frame_result(frame, row.raw, base, latency_ms, procedure_type, row.failure, kind))
        return results

    def clarify(self, frame: FrameInput, procedure_type: str, question: str) -> ClarifyResult:
        check_procedure_type(procedure_type)
        check_frames([frame])
        question = sanitize_question(question)
        parts = prompt_parts(procedure_type, "clarify", question)
        with self._lock:
            [(_, rows, latency_ms)] = list(self._generate_chunks([frame], [parts], procedure_type, "clarify"))
        base = self.result_provenance("clarify", batch_size=1)
        return clarify_result(frame, question, rows[0].raw, base, latency_ms, procedure_type, rows[0].failure)

    def result_provenance(self, kind: str, **params: Any) -> Provenance:
        """Provenance of a result of ``kind`` from this path (``params`` override)."""
        generation = {**self._generation_params(kind), **params}
        return provenance(self._base, prompt_version=prompt_version_for(kind), generation_params=generation)

    def close(self) -> None:
        import torch

        self.model = None
        self.processor = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -------------------------------------------------------------- generation

    def _generate_chunks(self, frames: list[FrameInput], prompts: list[PromptParts], procedure_type: str, kind: str):
        """Yield (frames, rows, per-frame latency) per generate call, halving the chunk
        size on CUDA OOM (see the module docstring)."""
        import torch

        if self.model is None:
            raise AnalyzerUnavailable("This analyzer was closed; get a new one with get_analyzer().")
        start = 0
        while start < len(frames):
            size = min(self._batch_limit, len(frames) - start)
            chunk = frames[start : start + size]
            started = time.perf_counter()
            out_of_memory = False
            try:
                rows = self._generate(chunk, prompts[start : start + size], procedure_type, kind)
            except torch.cuda.OutOfMemoryError:
                # Leave the except block before retrying, so that the traceback (and the
                # activations it references) can be freed.
                out_of_memory = True
            if out_of_memory:
                self._release_memory()
                if size == 1:
                    raise OutOfMemory(
                        "The GPU ran out of memory on a single frame; free GPU memory (other "
                        "processes, a smaller model) - a smaller batch cannot help."
                    )
                self._batch_limit = max(1, size // 2)
                logger.warning("CUDA out of memory at batch size %d; retrying with %d.", size, self._batch_limit)
                continue
            yield chunk, rows, per_frame_latency_ms(started, len(chunk))
            start += size

    @contextmanager
    def _cpu_thread_limit(self):
        import torch

        if self.cpu_threads is None or self.device.type != "cpu":
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(self.cpu_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _release_memory(self) -> None:
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _generate(self, frames: list[FrameInput], prompts: list[PromptParts], procedure_type: str,
                  kind: str) -> list[_Row]:
        import torch

        from ..grammar import GrammarLogitsProcessor

        images = [to_pil_rgb(frame.image) for frame in frames]
        texts = [
            self.processor.apply_chat_template(messages_for(prompt, image), add_generation_prompt=True, tokenize=False)
            for prompt, image in zip(prompts, images, strict=True)
        ]
        # The rendered chat text already starts with <bos>: do not let the tokenizer add another.
        inputs = self.processor(
            text=texts,
            images=[[image] for image in images],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)

        grammar = GrammarLogitsProcessor(self.grammars.get(procedure_type, kind), len(frames))
        max_new_tokens = self._max_new_tokens(kind)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self.config.temperature, "top_k": 0, "top_p": 1.0}
            if self.config.do_sample
            else {"do_sample": False}
        )
        with torch.inference_mode(), self._cpu_thread_limit():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                num_beams=1,
                logits_processor=[grammar],
                eos_token_id=self.stop_token_ids,
                pad_token_id=self.pad_token_id,
                **sampling,
            )
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_length:].tolist()
        return [self._row(tokens, grammar.rejected[i], max_new_tokens, kind) for i, tokens in enumerate(new_tokens)]

    def _row(self, tokens: list[int], rejected: bool, max_new_tokens: int, kind: str) -> _Row:
        stop_at = next((i for i, token in enumerate(tokens) if token in self.stop_token_ids), None)
        content = tokens if stop_at is None else tokens[:stop_at]
        raw = self.tokenizer.decode(content, skip_special_tokens=True)
        if rejected:
            return _Row(
                raw,
                "The model produced a token the output grammar refused (an engine bug); the frame "
                "was not analysed - report it with the raw output.",
            )
        if stop_at is None:
            return _Row(
                raw,
                f"The answer was cut off at max_new_tokens={max_new_tokens} before it was complete; "
                f"raise max_new_tokens to at least {max_new_tokens_for(kind)} (the longest valid answer).",
            )
        return _Row(raw, None)
