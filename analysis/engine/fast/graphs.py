"""One decoding step as a fixed sequence of kernels: captured CUDA graphs per batch bucket.

A step feeds each active row 1 token (a plain decision) or up to ``max_step_tokens``
(a decision plus the tokens jump-forward inserted). On CUDA the forward pass for every
(batch bucket, width) pair is captured once, at warm-up, into a CUDA graph: replaying it
launches the ~34 layers' hundreds of kernels with one call and no Python in between, which
is what makes a 4B model's step cost the GPU's time instead of the host's. Batches are
padded up to the next bucket (1, 2, 4, 8, ...); padding rows sit in free cache slots.

Graphs are captured only at warm-up, while no row is active (capturing runs the step on
scratch inputs, which writes into cache slots). A shape with no graph, and every step on a
CPU, runs the same function eagerly.
"""

from __future__ import annotations

import logging
import time

import torch

from .cache import StaticKVCache
from .model import Gemma3Runner

logger = logging.getLogger(__name__)

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class StepRunner:
    def __init__(self, runner: Gemma3Runner, cache: StaticKVCache, max_step_tokens: int, *, use_graphs: bool):
        self.runner = runner
        self.cache = cache
        self.max_step_tokens = max_step_tokens
        self.use_graphs = use_graphs
        self.buckets = [b for b in BUCKETS if b < cache.slots] + [cache.slots]
        self.graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor]]] = {}
        self._pool = None

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor,
                span: int | None = None) -> torch.Tensor:
        """Logits (B, vocab) after feeding ``ids`` (B, K) at ``positions`` into slots 0..B-1.

        ``span``: attend over the first ``span`` cache positions only (eager steps: the
        rest is empty; a graph always covers the whole cache, its shapes are fixed)."""
        keys, values = self.cache.view(0, ids.shape[0], span)
        hidden = self.runner.forward(self.runner.embed_ids(ids), positions, keys, values)
        return self.runner.logits(hidden, last)

    # ------------------------------------------------------------------ capture

    def capture(self) -> int:
        """Capture every (bucket, width) graph; returns how many. Call with no active rows."""
        if not self.use_graphs:
            return 0
        started = time.perf_counter()
        try:
            # Largest first: the smaller graphs then reuse the shared pool's memory.
            for width in sorted({1, self.max_step_tokens}, reverse=True):
                for bucket in reversed(self.buckets):
                    if (bucket, width) not in self.graphs:
                        self.graphs[(bucket, width)] = self._capture(bucket, width)
        except Exception as error:  # noqa: BLE001 - eager steps are slower, never wrong
            logger.warning("CUDA graph capture failed (%s: %s); decoding steps run eagerly.",
                           type(error).__name__, error)
            self.graphs.clear()
            self._pool = None
            torch.cuda.synchronize()
            return 0
        logger.info("Captured %d CUDA graphs in %.1f s", len(self.graphs), time.perf_counter() - started)
        return len(self.graphs)

    def _capture(self, bucket: int, width: int):
        device = self.runner.device
        static = {
            "ids": torch.zeros((bucket, width), dtype=torch.long, device=device),
            "positions": torch.arange(width, device=device).repeat(bucket, 1),
            "last": torch.zeros(bucket, dtype=torch.long, device=device),
        }
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(2):  # let lazy initialisation (cuBLAS handles, workspaces) happen outside capture
                self.forward(static["ids"], static["positions"], static["last"])
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool), torch.inference_mode():
            static["logits"] = self.forward(static["ids"], static["positions"], static["last"])
        self._pool = graph.pool()
        return graph, static

    # ------------------------------------------------------------------ run

    def run(self, feeds: list[list[int]], positions: list[int], pad_token_id: int) -> torch.Tensor:
        """Logits (len(feeds), vocab): row i feeds ``feeds[i]`` starting at ``positions[i]``."""
        count = len(feeds)
        width = max(len(feed) for feed in feeds)
        graph = None
        if self.graphs:
            bucket = next((b for b in self.buckets if b >= count), None)
            step_width = 1 if width == 1 else self.max_step_tokens
            graph = self.graphs.get((bucket, step_width)) if bucket is not None and width <= step_width else None
        rows = graph[1]["ids"].shape[0] if graph else count
        columns = graph[1]["ids"].shape[1] if graph else width
        ids = torch.full((rows, columns), pad_token_id, dtype=torch.long)
        starts = torch.zeros(rows, dtype=torch.long)
        last = torch.zeros(rows, dtype=torch.long)
        for index, feed in enumerate(feeds):
            ids[index, : len(feed)] = torch.tensor(feed, dtype=torch.long)
            starts[index] = positions[index]
            last[index] = len(feed) - 1
        offsets = starts[:, None] + torch.arange(columns)[None]
        device = self.runner.device
        if graph is None:
            span = self.cache.span(max(positions) + columns)
            return self.forward(ids.to(device), offsets.to(device), last.to(device), span)[:count]
        cuda_graph, static = graph
        static["ids"].copy_(ids.pin_memory(), non_blocking=True)
        static["positions"].copy_(offsets.pin_memory(), non_blocking=True)
        static["last"].copy_(last.pin_memory(), non_blocking=True)
        cuda_graph.replay()
        return static["logits"][:count]
