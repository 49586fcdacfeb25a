"""The static KV cache: one preallocated tensor per layer for keys and one for values.

Shape per layer: (slots, kv_heads, capacity + slack, head_dim). A slot holds one answer
being written; slots in use are always 0..n-1 (``move`` fills the hole a finished row
leaves with the last row), so a decoding step over n rows works on the first n slots - a
plain view, no gather, the same tensor addresses at every step (what CUDA graphs need).

``slack`` positions past the capacity absorb the padding tokens of multi-token steps
(jump-forward), which are written but never attended to by a real token.
"""

from __future__ import annotations

import torch


class StaticKVCache:
    def __init__(self, *, layers: int, slots: int, kv_heads: int, capacity: int, head_dim: int, slack: int,
                 dtype: torch.dtype, device: torch.device):
        self.slots = slots
        self.capacity = capacity
        shape = (slots, kv_heads, capacity + slack, head_dim)
        # Zeros, not empty(): a masked-out position still enters the attention product, and
        # 0 * NaN from uninitialised memory would poison the row.
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def view(self, start: int, stop: int, span: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Slots ``start..stop-1``, all positions or the first ``span``."""
        if span is None:
            return [k[start:stop] for k in self.k], [v[start:stop] for v in self.v]
        return [k[start:stop, :, :span] for k in self.k], [v[start:stop, :, :span] for v in self.v]

    def span(self, used: int, granule: int = 128) -> int:
        """Positions to attend over when rows use the first ``used``: rounded up, so that an
        eager step's shapes change every ``granule`` tokens rather than every token."""
        return min(self.k[0].shape[2], -(-used // granule) * granule)

    def write_prefix(self, slot: int, prefix_k: list[torch.Tensor], prefix_v: list[torch.Tensor]) -> None:
        """Copy a prompt prefix's keys/values (kv_heads, P, head_dim) into positions 0..P-1."""
        length = prefix_k[0].shape[1]
        for layer, (k, v) in enumerate(zip(prefix_k, prefix_v, strict=True)):
            self.k[layer][slot, :, :length].copy_(k)
            self.v[layer][slot, :, :length].copy_(v)

    def move(self, source: int, target: int) -> None:
        """Move a row's whole cache from slot ``source`` to slot ``target``."""
        if source == target:
            return
        for k, v in zip(self.k, self.v, strict=True):
            k[target].copy_(k[source])
            v[target].copy_(v[source])
