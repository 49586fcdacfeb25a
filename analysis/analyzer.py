"""The bridge from Django settings to the analyzer engine (which knows nothing of Django)."""

from __future__ import annotations

from django.conf import settings

from .engine import EngineConfig, get_analyzer


def engine_config() -> EngineConfig:
    backend = settings.ANALYZER_BACKEND
    model = {
        "demo": str(settings.DEMO_MODEL_DIR),
        "transformers": settings.MEDGEMMA_MODEL,
        "openai_compatible": "",
    }[backend]
    return EngineConfig(
        backend=backend,
        model=model,
        revision=settings.MEDGEMMA_REVISION,
        device=settings.ANALYZER_DEVICE,
        batch_size=settings.ANALYZER_BATCH_SIZE,
        openai_base_url=settings.OPENAI_COMPATIBLE_BASE_URL or None,
        openai_api_key=settings.OPENAI_COMPATIBLE_API_KEY or None,
        openai_model=settings.OPENAI_COMPATIBLE_MODEL if backend == "openai_compatible" else None,
        timeout_s=settings.ANALYZER_TIMEOUT_S,
        max_retries=settings.ANALYZER_MAX_RETRIES,
        engine=settings.ANALYZER_ENGINE,
        jump_forward=settings.ANALYZER_JUMP_FORWARD,
        cuda_graphs=settings.ANALYZER_CUDA_GRAPHS,
        prefix_cache=settings.ANALYZER_PREFIX_CACHE,
        context_tokens=settings.ANALYZER_CONTEXT_TOKENS or None,
        grammar_cache_dir=str(settings.ANALYZER_GRAMMAR_CACHE_DIR),
    )


def configured_analyzer():
    """The process's analyzer for the current settings; loads the model on first use only
    (lazily, in the worker process that runs the task, never at import)."""
    config = engine_config()
    if config.backend == "demo":
        from .engine import ensure_demo_model

        ensure_demo_model(config.model)
    return get_analyzer(config)


def analyzer_loaded() -> bool:
    """Whether this process's analyzer is loaded (False before the first batch of a worker
    process: the weights load then, which takes tens of seconds for MedGemma)."""
    from .engine.registry import is_loaded

    return is_loaded(engine_config())
