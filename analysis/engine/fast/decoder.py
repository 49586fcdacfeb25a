"""The fast engine's decode loop: rows in cache slots, one model decision per row per step.

A row is one answer being written. ``admit`` prefills new rows (image features, the
prompt after the cached prefix) into free slots and makes their first decision; ``step``
runs one forward pass over every active row and makes each row's next decision. New rows
can be admitted between any two steps (continuous batching): a live frame does not wait
for a batch of recorded frames to finish.

Per step, in this order, so that the CPU's grammar work overlaps the GPU's forward pass:

1. launch the forward pass over each row's pending tokens (asynchronous on CUDA; a
   captured graph per batch bucket, ``graphs.py``);
2. meanwhile fill the token bitmask of every row that decides next (xgrammar + the text
   length limits, ``constraint.py``) - the rows' grammar states already include the
   pending tokens, which were accepted when they were chosen;
3. copy the bitmask to the device, mask, argmax there; read the chosen tokens back (the
   step's one synchronisation);
4. accept each chosen token and, with jump-forward on, the tokens the grammar forces after
   it (JSON keys, punctuation, the rest of an enum value): they become the row's pending
   tokens, all fed in the next single forward pass instead of one pass each.

Greedy only (argmax); sampling stays on the reference path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xgrammar as xgr

from ..grammar import GrammarCache, apply_bitmask
from ..schemas import max_new_tokens_for
from .cache import StaticKVCache
from .graphs import StepRunner
from .model import Gemma3Runner
from .prefix import PrefixCache, PromptLayouts
from .preprocess import ImagePreprocessor

logger = logging.getLogger(__name__)


class ContextOverflow(Exception):
    """A row's prompt plus answer does not fit the cache capacity (the reference path,
    which has no such limit, takes the row)."""


@dataclass
class Request:
    image: np.ndarray  # HxWx3 uint8 RGB
    procedure_type: str
    kind: str
    question: str | None = None
    max_new_tokens: int | None = None
    tag: Any = None  # the caller's handle, returned on the row


@dataclass
class Row:
    request: Request
    constraint: Any
    slot: int
    position: int = 0  # next cache position to write
    pending: list[int] = field(default_factory=list)
    output: list[int] = field(default_factory=list)
    # Indexes into ``output`` of the tokens the model chose (the others were forced).
    decided: list[int] = field(default_factory=list)
    decisions: int = 0
    forward_passes: int = 0
    done: bool = False
    failure: str | None = None
    overflow: bool = False
    admitted_at: float = 0.0
    finished_at: float = 0.0
    max_new_tokens: int = 0


@dataclass(frozen=True)
class DecoderOptions:
    slots: int
    capacity: int
    jump_forward: bool = True
    prefix_cache: bool = True
    # Most tokens one row feeds in one forward pass (its decision + forced tokens).
    max_step_tokens: int = 16
    vision_batch: int = 8
    cuda_graphs: bool = True


class Decoder:
    def __init__(self, *, runner: Gemma3Runner, processor: Any, grammars: GrammarCache, stop_token_ids: list[int],
                 pad_token_id: int, options: DecoderOptions):
        self.runner = runner
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.grammars = grammars
        self.stop_token_ids = set(stop_token_ids)
        self.pad_token_id = pad_token_id
        self.options = options
        shape = runner.shape
        self.cache = StaticKVCache(layers=shape.layers, slots=options.slots, kv_heads=shape.kv_heads,
                                   capacity=options.capacity, head_dim=shape.head_dim,
                                   slack=options.max_step_tokens, dtype=runner.dtype, device=runner.device)
        self.layouts = PromptLayouts(processor, runner)
        self.prefixes = PrefixCache(runner, self.layouts)
        self.preprocess = ImagePreprocessor.for_processor(processor.image_processor, runner.device, runner.dtype)
        self.steps = StepRunner(runner, self.cache, options.max_step_tokens,
                                use_graphs=options.cuda_graphs and runner.device.type == "cuda")
        self.rows: list[Row] = []  # rows[i] is in slot i
        self.bitmask = xgr.allocate_token_bitmask(options.slots, shape.vocab_size)
        if runner.device.type == "cuda":
            self.bitmask = self.bitmask.pin_memory()

    @property
    def free_slots(self) -> int:
        return self.options.slots - len(self.rows)

    def warm_up(self, procedure_types, kinds) -> dict[str, float]:
        """Compute every prefix and capture the step graphs now (worker start)."""
        started = time.perf_counter()
        for procedure_type in procedure_types:
            for kind in kinds:
                if self.options.prefix_cache:
                    self.prefixes.get(procedure_type, kind)
        prefixes_s = time.perf_counter() - started
        started = time.perf_counter()
        captured = self.steps.capture()
        return {"prefixes_s": round(prefixes_s, 3), "graphs": captured,
                "graphs_s": round(time.perf_counter() - started, 3)}

    # ------------------------------------------------------------------ admit

    @torch.inference_mode()
    def admit(self, requests: list[Request]) -> list[Row]:
        """Prefill ``requests`` into free slots and make each row's first decision.

        Raises ``ContextOverflow`` (admitting nothing) if a prompt leaves no room for an
        answer in the cache.
        """
        if len(requests) > self.free_slots:
            raise ValueError(f"{len(requests)} requests but only {self.free_slots} free slots")
        if not requests:
            return []
        layouts = [self.layouts.layout(r.procedure_type, r.kind, r.question) for r in requests]
        for layout in layouts:
            if len(layout.ids) + 2 > self.options.capacity:
                raise ContextOverflow(f"the prompt is {len(layout.ids)} tokens; the cache holds "
                                      f"{self.options.capacity} (check prompt_fits first)")
        features = self._image_features([r.image for r in requests])
        first_slot = len(self.rows)
        starts = []
        for index, (request, layout) in enumerate(zip(requests, layouts, strict=True)):
            start = 0
            if self.options.prefix_cache:
                prefix = self.prefixes.get(request.procedure_type, request.kind)
                if self.prefixes.matches(prefix, layout):
                    self.cache.write_prefix(first_slot + index, prefix.keys, prefix.values)
                    start = len(prefix.ids)
            starts.append(start)
        logits = self._prefill(layouts, starts, features, first_slot)
        now = time.perf_counter()
        rows = []
        for index, (request, layout) in enumerate(zip(requests, layouts, strict=True)):
            answer = self.grammars.get(request.procedure_type, request.kind)
            row = Row(request=request, constraint=answer.row(), slot=first_slot + index, position=len(layout.ids),
                      admitted_at=now,
                      max_new_tokens=request.max_new_tokens or max_new_tokens_for(request.kind))
            row.forward_passes = 1
            rows.append(row)
        self.rows.extend(rows)
        self._decide(rows, logits)
        self._release_finished()
        return rows

    def prompt_fits(self, request: Request) -> bool:
        """Whether ``request``'s prompt leaves room for an answer in the cache."""
        layout = self.layouts.layout(request.procedure_type, request.kind, request.question)
        return len(layout.ids) + 2 <= self.options.capacity

    def _image_features(self, images: list[np.ndarray]) -> torch.Tensor:
        chunks = []
        batch = self.options.vision_batch
        for start in range(0, len(images), batch):
            pixels = self.preprocess(images[start:start + batch])
            chunks.append(self.runner.image_features(pixels))
        return torch.cat(chunks)

    def _prefill(self, layouts, starts, features, first_slot) -> torch.Tensor:
        device = self.runner.device
        lengths = [len(layout.ids) - start for layout, start in zip(layouts, starts, strict=True)]
        width = max(lengths)
        ids = torch.full((len(layouts), width), self.pad_token_id, dtype=torch.long)
        for index, (layout, start) in enumerate(zip(layouts, starts, strict=True)):
            ids[index, : lengths[index]] = torch.tensor(layout.ids[start:])
        ids = ids.to(device)
        start_t = torch.tensor(starts, device=device)
        positions = start_t[:, None] + torch.arange(width, device=device)[None]
        embeds = self.runner.embed_ids(ids)
        for index, (layout, start) in enumerate(zip(layouts, starts, strict=True)):
            embeds[index, layout.image_start - start: layout.image_end - start] = features[index].to(embeds.dtype)
        block = (torch.tensor([layout.image_start for layout in layouts], device=device),
                 torch.tensor([layout.image_end for layout in layouts], device=device))
        span = self.cache.span(max(starts) + width)  # padding positions included
        keys, values = self.cache.view(first_slot, first_slot + len(layouts), span)
        hidden = self.runner.forward(embeds, positions, keys, values, block=block)
        return self.runner.logits(hidden, torch.tensor(lengths, device=device) - 1)

    # ------------------------------------------------------------------ step

    @torch.inference_mode()
    def step(self) -> list[Row]:
        """One forward pass over the active rows; returns the rows that finished."""
        rows = self.rows
        if not rows:
            return []
        width = max(min(len(row.pending), self.options.max_step_tokens) for row in rows)
        feeds = []
        for row in rows:
            feed, row.pending = row.pending[:width], row.pending[width:]
            feeds.append(feed)
        logits = self.steps.run(feeds, [row.position for row in rows], self.pad_token_id)
        deciding = []
        for row, feed in zip(rows, feeds, strict=True):
            row.position += len(feed)
            row.forward_passes += 1
            if not row.pending:
                deciding.append(row)
        self._decide(deciding, logits, all_rows=rows)
        return self._release_finished()

    def _decide(self, rows: list[Row], logits: torch.Tensor, all_rows: list[Row] | None = None) -> None:
        """Choose each row's next token from ``logits`` (one row of logits per row of
        ``all_rows``, default ``rows``)."""
        all_rows = all_rows if all_rows is not None else rows
        if not rows:
            return
        index_of = {id(row): index for index, row in enumerate(all_rows)}
        bitmask = self.bitmask[: len(all_rows)]
        xgr.reset_token_bitmask(bitmask)
        for row in rows:
            row.constraint.fill(bitmask, index_of[id(row)])
        apply_bitmask(logits, bitmask[: logits.shape[0]])
        chosen = self.choose(rows, logits, index_of)
        for row in rows:
            self._advance(row, chosen[index_of[id(row)]])

    def choose(self, rows: list[Row], logits: torch.Tensor, index_of: dict[int, int]) -> list[int]:
        """The decision per row of (already masked) logits: greedy. The one place a token
        is picked; the rest of the step does not depend on how."""
        return logits.argmax(dim=-1).tolist()

    def _advance(self, row: Row, token: int) -> None:
        row.decisions += 1
        if not row.constraint.accept(token):
            row.constraint.reject()
            self._finish(row, "The model produced a token the output grammar refused (an engine bug); the frame "
                              "was not analysed - report it with the raw output.")
            return
        row.decided.append(len(row.output))
        row.output.append(token)
        if token in self.stop_token_ids or row.constraint.is_terminated():
            self._finish(row)
            return
        forced = row.constraint.jump_forward() if self.options.jump_forward else []
        row.output.extend(forced)
        if self.options.jump_forward and row.constraint.is_completed():
            # The answer is complete and only a stop token can follow: no pass needed for it.
            self._finish(row)
            return
        if len(row.output) >= row.max_new_tokens:
            self._finish(row, f"The answer was cut off at max_new_tokens={row.max_new_tokens} before it was "
                              f"complete; raise max_new_tokens to at least {max_new_tokens_for(row.request.kind)} "
                              "(the longest valid answer).")
            return
        pending = [token, *forced]
        if row.position + len(pending) > self.options.capacity:
            row.overflow = True
            self._finish(row, f"The answer did not fit the fast engine's {self.options.capacity}-token context.")
            return
        row.pending = pending

    def _finish(self, row: Row, failure: str | None = None) -> None:
        row.done = True
        row.failure = failure
        row.pending = []
        row.finished_at = time.perf_counter()

    def _release_finished(self) -> list[Row]:
        finished = [row for row in self.rows if row.done]
        for row in sorted(finished, key=lambda r: r.slot, reverse=True):
            last = self.rows[-1]
            if last is not row:
                self.cache.move(last.slot, row.slot)
                last.slot = row.slot
                self.rows[row.slot] = last
            self.rows.pop()
        return finished

    def abandon(self) -> list[Row]:
        """Drop every active row (after an error); returns them."""
        rows, self.rows = self.rows, []
        return rows

    def text(self, row: Row) -> str:
        content = [token for token in row.output if token not in self.stop_token_ids]
        return self.tokenizer.decode(content, skip_special_tokens=True)
