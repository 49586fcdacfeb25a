"""A random-weight model with MedGemma-4B's exact architecture, for measuring speed and
memory on a GPU without downloading (or being allowed to use) the real weights.

Its outputs are meaningless; its cost per step is the real model's, because cost depends
on shapes, not values. Only the benchmarks use it (``benchmarks/run_gpu_engine_test.py``,
``--gpu-shape`` of the latency and memory benchmarks).

The tokenizer is the demo model's (about 1k tokens), while the model keeps Gemma 3's
262,208-entry vocabulary: the grammar is therefore built with the model config's vocab
size, and the logits bitmask covers the whole padded vocabulary, as it must for the real
model.
"""

from __future__ import annotations

from pathlib import Path

from analysis.engine.backends.common import provenance
from analysis.engine.backends.transformers_backend import TransformersAnalyzer
from analysis.engine.config import EngineConfig

MEDGEMMA_SHAPE_MODEL_ID = "medgemma-4b-shaped-random (benchmark only, NOT a medical model)"

# google/medgemma-4b-it (Gemma 3 4B) architecture.
TEXT = {
    "vocab_size": 262_208,
    "hidden_size": 2560,
    "intermediate_size": 10_240,
    "num_hidden_layers": 34,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 1024,
    "max_position_embeddings": 131_072,
    "rms_norm_eps": 1e-6,
    "hidden_activation": "gelu_pytorch_tanh",
}
# 5 local (sliding-window) layers, then 1 global layer, repeated.
SLIDING_WINDOW_PATTERN = 6
ROPE = {
    "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
    "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
}
VISION = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 896,
    "patch_size": 14,
    "layer_norm_eps": 1e-6,
    "vision_use_head": False,
}
MM_TOKENS_PER_IMAGE = 256


def medgemma_4b_config(token_ids: dict[str, int], *, text_layers: int | None = None, vision_layers: int | None = None):
    """Gemma3Config of MedGemma-4B. ``text_layers``/``vision_layers`` shrink the depth for
    a quick CPU check of this code path; the benchmarks use the full depth."""
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig

    layers = text_layers or TEXT["num_hidden_layers"]
    layer_types = [
        "full_attention" if (i + 1) % SLIDING_WINDOW_PATTERN == 0 else "sliding_attention"
        for i in range(layers)
    ]
    text = Gemma3TextConfig(
        **{**TEXT, "num_hidden_layers": layers},
        layer_types=layer_types,
        rope_parameters={kind: dict(values) for kind, values in ROPE.items()},
        pad_token_id=token_ids["<pad>"],
        eos_token_id=token_ids["<eos>"],
        bos_token_id=token_ids["<bos>"],
    )
    vision = SiglipVisionConfig(**{**VISION, "num_hidden_layers": vision_layers or VISION["num_hidden_layers"]})
    return Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
        boi_token_index=token_ids["<start_of_image>"],
        eoi_token_index=token_ids["<end_of_image>"],
        image_token_index=token_ids["<image_soft_token>"],
    )


def medgemma_shaped_processor(demo_model_dir: str | Path):
    """The demo tokenizer and chat template with MedGemma's image pipeline: 896x896
    input, 256 image tokens per image."""
    from transformers import AutoProcessor
    from transformers.models.gemma3 import Gemma3Processor

    from analysis.engine.demo_model import gemma3_image_processor

    demo = AutoProcessor.from_pretrained(demo_model_dir, local_files_only=True)
    image_processor = gemma3_image_processor(VISION["image_size"])
    return Gemma3Processor(
        image_processor=image_processor,
        tokenizer=demo.tokenizer,
        chat_template=demo.chat_template,
        image_seq_length=MM_TOKENS_PER_IMAGE,
    )


class MedGemmaShapedAnalyzer(TransformersAnalyzer):
    """The production reference analyzer (``TransformersAnalyzer``) whose ``_load`` builds
    a random-weight MedGemma-4B instead of reading a checkpoint; nothing else differs.

    Weights are created directly on the target device in the target dtype (bf16 on
    CUDA), initialised by transformers' own init, so nothing touches the network or the
    host memory for 8.6 GB of parameters.
    """

    def __init__(
        self,
        config: EngineConfig,
        demo_model_dir: str | Path,
        *,
        text_layers: int | None = None,
        vision_layers: int | None = None,
        seed: int = 0,
    ):
        self._shape = {"demo_model_dir": demo_model_dir, "text_layers": text_layers,
                       "vision_layers": vision_layers, "seed": seed}
        super().__init__(config, model_location=MEDGEMMA_SHAPE_MODEL_ID, backend_name="transformers",
                         model_id=MEDGEMMA_SHAPE_MODEL_ID, is_demo=True)
        self._base = provenance(self._base, model_revision=config.revision or f"random init (seed {seed})")

    def _load(self, location: str, revision: str | None):
        import torch
        from transformers import Gemma3ForConditionalGeneration

        shape = self._shape
        processor = medgemma_shaped_processor(shape["demo_model_dir"])
        tokenizer = processor.tokenizer
        token_ids = {
            name: tokenizer.convert_tokens_to_ids(name)
            for name in ("<pad>", "<eos>", "<bos>", "<start_of_image>", "<end_of_image>", "<image_soft_token>")
        }
        model_config = medgemma_4b_config(token_ids, text_layers=shape["text_layers"],
                                          vision_layers=shape["vision_layers"])
        torch.manual_seed(shape["seed"])
        with torch.device(self.device):
            model = Gemma3ForConditionalGeneration._from_config(model_config, dtype=self.dtype)
        model.eval()
        return processor, model


def build_medgemma_shaped_analyzer(
    config: EngineConfig,
    demo_model_dir: str | Path,
    *,
    text_layers: int | None = None,
    vision_layers: int | None = None,
    seed: int = 0,
) -> MedGemmaShapedAnalyzer:
    """A ``MedGemmaShapedAnalyzer`` (the reference path; wrap it in ``FastAnalyzer`` for
    the fast engine)."""
    return MedGemmaShapedAnalyzer(config, demo_model_dir, text_layers=text_layers, vision_layers=vision_layers,
                                  seed=seed)
