"""Engine configuration: one frozen, hashable value per analyzer.

It is hashable on purpose: ``get_analyzer`` caches one loaded analyzer per process per
distinct configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("demo", "transformers", "openai_compatible")
DEVICES = ("auto", "cpu", "cuda")
# Local decode loops: "fast" (engine/fast: static KV cache, CUDA graphs, jump-forward,
# prefix cache) or "reference" (Hugging Face generate). "auto" = fast: it is faster on the
# CPU too (benchmarks/README.md) and hands anything it does not support to the reference.
ENGINES = ("auto", "fast", "reference")

DEFAULT_MEDGEMMA_MODEL = "google/medgemma-4b-it"


def default_demo_model_dir() -> str:
    """Where the demo model is built when the configuration names no directory.

    ``MEDVISION_DEMO_MODEL_DIR`` wins; otherwise a per-user cache folder, so that every
    worker process on the machine shares one build.
    """
    env = os.environ.get("MEDVISION_DEMO_MODEL_DIR")
    if env:
        return env
    cache_root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(cache_root) / "medvision" / "demo-gemma3")


@dataclass(frozen=True)
class EngineConfig:
    backend: str = "demo"
    # Hub id or local directory for "transformers"; the demo model directory for "demo"
    # (empty = default_demo_model_dir()). Ignored by "openai_compatible" (see openai_model).
    model: str = ""
    revision: str | None = None
    device: str = "auto"
    batch_size: int = 4
    # None = the per-schema worst-case bound from schemas.MAX_NEW_TOKENS, which is large
    # enough for the longest valid answer. A smaller value can truncate valid answers
    # (they then come back ok=False); benchmarks use it to cap run time.
    max_new_tokens: int | None = None
    openai_base_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_model: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    # Sampling exists only for the grammar-robustness tests and the parsing benchmark,
    # which need many *different* outputs from the demo model. Production stays greedy.
    do_sample: bool = False
    temperature: float = 1.0
    seed: int | None = None
    # The local decode loop (ENGINES) and the fast engine's switches.
    engine: str = "auto"
    jump_forward: bool = True
    cuda_graphs: bool = True
    prefix_cache: bool = True
    # Tokens of prompt + answer the fast engine's KV cache holds per row. None: the model's
    # sliding window when it has a usable one (1024 for MedGemma: every layer then stays
    # plain causal, and batch 8 stays under 10 GB), else the longest prompt + answer.
    context_tokens: int | None = None
    # Where compiled grammars are kept between worker starts (None: compiled every start).
    grammar_cache_dir: str | None = None
    # Compile grammars, fill the prefix cache and capture CUDA graphs when the analyzer is
    # created (a GPU worker's start), instead of on first use.
    warm_up: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(
                f"Unknown analyzer backend {self.backend!r}; use one of {', '.join(BACKENDS)}."
            )
        if self.device not in DEVICES:
            raise ValueError(f"Unknown device {self.device!r}; use one of {', '.join(DEVICES)}.")
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown engine {self.engine!r}; use one of {', '.join(ENGINES)}.")
        if self.context_tokens is not None and self.context_tokens < 64:
            raise ValueError("context_tokens must be at least 64 (or None for the model's window).")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1 (or None for the schema bound).")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive.")
        if self.max_retries < 0:
            raise ValueError("max_retries cannot be negative.")
        if self.backend == "openai_compatible" and not (self.openai_base_url and self.openai_model):
            raise ValueError(
                "The openai_compatible backend needs openai_base_url (e.g. http://host:8000/v1) "
                "and openai_model (the served model name)."
            )

    @property
    def model_location(self) -> str:
        """The model directory / hub id this configuration actually loads."""
        if self.backend == "demo":
            return self.model or default_demo_model_dir()
        if self.backend == "transformers":
            return self.model or DEFAULT_MEDGEMMA_MODEL
        return self.openai_model or ""
