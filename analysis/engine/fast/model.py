"""Gemma 3's forward pass over a static KV cache, using the loaded model's own modules.

No second copy of anything: the projections, norms, MLPs, rotary tables, vision tower and
projector are the Hugging Face model's modules, called directly. What this file owns is
what ``generate`` does per step from Python - cache bookkeeping, mask building, position
handling - done instead with fixed-shape tensor operations, so that one decoding step is
the same sequence of kernels every time (what a CUDA graph needs, ``graphs.py``):

* the cache is one tensor per layer, (slots, kv_heads, capacity, head_dim); new keys and
  values are written at each row's positions with an indexed copy;
* the attention mask is computed on the device from the rows' positions: causal, OR the
  image block (Gemma 3's image tokens attend to each other both ways during prefill), AND
  the sliding window for local layers (``kv > q - window``, as transformers does);
* grouped-query attention runs on the key/value heads without repeating them: the query
  heads of one KV head are stacked along the query axis (what transformers does for one
  query token, here for any number).

Nothing here knows about grammars, rows or batches of requests (``decoder.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


class UnsupportedModel(ValueError):
    """The loaded model is not one this fast path reproduces; the reference path runs it."""


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    q_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    sliding_window: int | None
    layer_types: tuple[str, ...]
    image_token_id: int
    boi_token_id: int
    eoi_token_id: int
    image_tokens: int


def _gemma3_parts(model):
    try:
        text_model = model.model.language_model
        vision = model.model
        lm_head = model.lm_head
        layers = list(text_model.layers)
        config = model.config
        text_config = config.text_config
    except AttributeError as error:
        raise UnsupportedModel(f"not a Gemma 3 vision-language model ({type(model).__name__}: {error})") from None
    problems = []
    if type(model).__name__ != "Gemma3ForConditionalGeneration":
        problems.append(f"architecture {type(model).__name__}")
    if getattr(text_config, "attn_logit_softcapping", None) is not None:
        problems.append("attention logit soft-capping")
    if getattr(text_config, "final_logit_softcapping", None) is not None:
        problems.append("final logit soft-capping")
    if getattr(text_config, "use_bidirectional_attention", False):
        problems.append("bidirectional text attention")
    if any(getattr(layer.self_attn, "attention_dropout", 0) for layer in layers) and model.training:
        problems.append("training mode")
    if problems:
        raise UnsupportedModel("the fast path does not reproduce: " + ", ".join(problems))
    return text_model, vision, lm_head, layers, config, text_config


class Gemma3Runner:
    """Forward passes of a ``Gemma3ForConditionalGeneration`` over caller-owned caches."""

    def __init__(self, model):
        text_model, vision, lm_head, layers, config, text_config = _gemma3_parts(model)
        self.model = model
        self.text_model = text_model
        self.vision = vision
        self.lm_head = lm_head
        self.layers = layers
        self.embed = text_model.embed_tokens
        self.norm = text_model.norm
        self.rotary = text_model.rotary_emb
        first = layers[0].self_attn
        self.scaling = first.scaling
        self.shape = ModelShape(
            layers=len(layers),
            hidden=int(text_config.hidden_size),
            q_heads=int(text_config.num_attention_heads),
            kv_heads=int(text_config.num_key_value_heads),
            head_dim=int(first.head_dim),
            vocab_size=int(text_config.vocab_size),
            sliding_window=getattr(text_config, "sliding_window", None),
            layer_types=tuple(text_config.layer_types),
            image_token_id=int(config.image_token_id),
            boi_token_id=int(config.boi_token_index),
            eoi_token_id=int(config.eoi_token_index),
            image_tokens=int(config.mm_tokens_per_image),
        )
        weight = self.lm_head.weight
        self.device = weight.device
        self.dtype = weight.dtype

    # ------------------------------------------------------------------ inputs

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) pixel values -> (N, image_tokens, hidden) soft tokens."""
        return self.vision.get_image_features(pixel_values.to(self.dtype), return_dict=True).pooler_output

    def embed_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        # transformers replaces an out-of-vocabulary image token id by 0 before embedding;
        # the image positions are overwritten by the image features anyway.
        if self.shape.image_token_id >= self.shape.vocab_size:
            input_ids = torch.where(input_ids == self.shape.image_token_id, torch.zeros_like(input_ids), input_ids)
        return self.embed(input_ids)

    # ------------------------------------------------------------------ forward

    def masks(self, positions: torch.Tensor, capacity: int, block: tuple[torch.Tensor, torch.Tensor] | None):
        """Boolean attention masks (B, 1, T, capacity) per layer type, from the positions of
        the T query tokens of each row. ``block``: (start, end) absolute positions of each
        row's image tokens, which see each other both ways (prefill only)."""
        key_positions = torch.arange(capacity, device=positions.device)
        q = positions[:, :, None]
        k = key_positions[None, None, :]
        allowed = k <= q
        if block is not None:
            start, end = (edge[:, None, None] for edge in block)
            allowed = allowed | ((q >= start) & (q < end) & (k >= start) & (k < end))
        masks = {"full_attention": allowed[:, None]}
        if self.shape.sliding_window is not None:
            masks["sliding_attention"] = (allowed & (k > q - self.shape.sliding_window))[:, None]
        else:
            masks["sliding_attention"] = masks["full_attention"]
        return masks

    def forward(self, hidden: torch.Tensor, positions: torch.Tensor, cache_k: list[torch.Tensor],
                cache_v: list[torch.Tensor], block=None) -> torch.Tensor:
        """Run the decoder layers on ``hidden`` (B, T, hidden) at ``positions`` (B, T),
        writing each layer's keys/values into ``cache_k[i]``/``cache_v[i]`` (B, kv_heads,
        capacity, head_dim) at those positions. Returns the final-normed hidden states."""
        capacity = cache_k[0].shape[2]
        masks = self.masks(positions, capacity, block)
        rotary = {kind: self.rotary(hidden, positions, kind) for kind in set(self.shape.layer_types)}
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(positions)
        for index, layer in enumerate(self.layers):
            kind = self.shape.layer_types[index]
            hidden = self._layer(layer, hidden, rotary[kind], masks[kind], cache_k[index], cache_v[index],
                                 rows, positions)
        return self.norm(hidden)

    def _layer(self, layer, hidden, cos_sin, mask, cache_k, cache_v, rows, positions):
        from transformers.models.gemma3.modeling_gemma3 import apply_rotary_pos_emb

        attention = layer.self_attn
        batch, length, _ = hidden.shape
        head_dim = self.shape.head_dim
        residual = hidden
        normed = layer.input_layernorm(hidden)
        q = attention.q_proj(normed).view(batch, length, -1, head_dim).transpose(1, 2)
        k = attention.k_proj(normed).view(batch, length, -1, head_dim).transpose(1, 2)
        v = attention.v_proj(normed).view(batch, length, -1, head_dim).transpose(1, 2)
        q = attention.q_norm(q)
        k = attention.k_norm(k)
        cos, sin = cos_sin
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        cache_k[rows, :, positions] = k.transpose(1, 2)
        cache_v[rows, :, positions] = v.transpose(1, 2)
        attended = self._attention(q, cache_k, cache_v, mask)
        attended = attention.o_proj(attended.transpose(1, 2).reshape(batch, length, -1))
        hidden = residual + layer.post_attention_layernorm(attended)
        residual = hidden
        mlp = layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(hidden)))
        return residual + mlp

    def _attention(self, q, cache_k, cache_v, mask):
        batch, q_heads, length, head_dim = q.shape
        kv_heads = cache_k.shape[1]
        groups = q_heads // kv_heads
        # (B, Hq, T, D) -> (B, Hkv, groups*T, D): query head h = kv_head * groups + g.
        grouped = q.reshape(batch, kv_heads, groups * length, head_dim)
        grouped_mask = mask if length == 1 else mask.repeat(1, 1, groups, 1)
        out = F.scaled_dot_product_attention(grouped, cache_k, cache_v, attn_mask=grouped_mask, scale=self.scaling)
        return out.reshape(batch, q_heads, length, head_dim)

    def logits(self, hidden: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
        """Float32 logits (B, vocab) of each row's token at ``last_index`` (B,)."""
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self.lm_head(hidden[rows, last_index]).float()
