"""Prompt token layouts and the prefix cache.

Every prompt is ``<bos>`` + the system text + the fixed instructions of its (procedure
type, kind), then the image (``<start_of_image>``, the image soft tokens,
``<end_of_image>``), then what varies (the clarify question, the turn markers). The tokens
before ``<start_of_image>`` - about 250 with MedGemma's tokenizer - are the same for every
frame, so their keys and values are computed once per (procedure type, kind, prompt
version) and copied into each new row's cache slot; a row's prefill then runs only the
image and what follows.

The token ids are exactly what the Hugging Face processor produces for the same messages
(the chat template, then ``<start_of_image>`` expanded into the full image sequence, then
the tokenizer without extra special tokens); ``tests/engine/fast/test_prefix.py`` checks it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from ..prompts import PROMPT_VERSIONS, messages_for, prompt_parts
from .model import Gemma3Runner


@dataclass(frozen=True)
class PromptLayout:
    ids: tuple[int, ...]
    # Tokens before <start_of_image>: identical for every request of (procedure, kind).
    prefix_length: int
    image_start: int  # index of the first image soft token
    image_end: int  # one past the last


@dataclass(frozen=True)
class Prefix:
    ids: tuple[int, ...]
    keys: list[torch.Tensor]  # per layer (kv_heads, P, head_dim)
    values: list[torch.Tensor]


class PromptLayouts:
    """Token layouts of the engine's prompts for one processor."""

    def __init__(self, processor, runner: Gemma3Runner):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.shape = runner.shape
        self._cache: dict[tuple[str, str], PromptLayout] = {}

    def layout(self, procedure_type: str, kind: str, question: str | None = None) -> PromptLayout:
        if kind != "clarify":
            key = (procedure_type, kind)
            cached = self._cache.get(key)
            if cached is None:
                cached = self._cache[key] = self._build(procedure_type, kind, None)
            return cached
        return self._build(procedure_type, kind, question)

    def _build(self, procedure_type: str, kind: str, question: str | None) -> PromptLayout:
        parts = prompt_parts(procedure_type, kind, question)
        text = self.processor.apply_chat_template(messages_for(parts, None), add_generation_prompt=True, tokenize=False)
        text = text.replace(self.processor.boi_token, self.processor.full_image_sequence)
        ids = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        boi = ids.index(self.shape.boi_token_id)
        images = [index for index, token in enumerate(ids) if token == self.shape.image_token_id]
        if len(images) != self.shape.image_tokens or images != list(range(images[0], images[0] + len(images))):
            raise ValueError(
                f"The prompt has {len(images)} image tokens where the model expects one block of "
                f"{self.shape.image_tokens}; the processor and the model do not match."
            )
        return PromptLayout(ids=ids, prefix_length=boi, image_start=images[0], image_end=images[-1] + 1)


class PrefixCache:
    """Keys and values of each (procedure type, kind) prompt prefix, computed once."""

    def __init__(self, runner: Gemma3Runner, layouts: PromptLayouts):
        self.runner = runner
        self.layouts = layouts
        self._prefixes: dict[tuple[str, str, str], Prefix] = {}
        self._lock = threading.Lock()

    def get(self, procedure_type: str, kind: str) -> Prefix:
        key = (procedure_type, kind, PROMPT_VERSIONS[kind])
        prefix = self._prefixes.get(key)
        if prefix is None:
            with self._lock:
                prefix = self._prefixes.get(key)
                if prefix is None:
                    prefix = self._prefixes[key] = self._compute(procedure_type, kind)
        return prefix

    def matches(self, prefix: Prefix, layout: PromptLayout) -> bool:
        """The layout starts with this prefix's tokens (a tokenizer could merge across the
        boundary; then the row is prefilled from position 0 instead)."""
        return layout.prefix_length == len(prefix.ids) and layout.ids[: len(prefix.ids)] == prefix.ids

    @torch.inference_mode()
    def _compute(self, procedure_type: str, kind: str) -> Prefix:
        question = "?" if kind == "clarify" else None
        layout = self.layouts.layout(procedure_type, kind, question)
        ids = layout.ids[: layout.prefix_length]
        shape = self.runner.shape
        device, dtype = self.runner.device, self.runner.dtype
        length = len(ids)
        keys = [torch.zeros((1, shape.kv_heads, length, shape.head_dim), dtype=dtype, device=device)
                for _ in range(shape.layers)]
        values = [torch.zeros_like(k) for k in keys]
        input_ids = torch.tensor([ids], device=device)
        positions = torch.arange(length, device=device)[None]
        self.runner.forward(self.runner.embed_ids(input_ids), positions, keys, values)
        return Prefix(ids=tuple(ids), keys=[k[0] for k in keys], values=[v[0] for v in values])
