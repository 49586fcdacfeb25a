"""One analyzer per process per configuration, created on first use.

Nothing heavy happens at import: model weights load inside the first ``get_analyzer``
call of a process, so a Celery prefork parent (which never calls it) stays light and each
worker child loads its own copy.
"""

from __future__ import annotations

import os
import threading

from .config import EngineConfig
from .types import Analyzer

_lock = threading.Lock()
_analyzers: dict[EngineConfig, Analyzer] = {}
_owner_pid = os.getpid()


def get_analyzer(config: EngineConfig | None = None) -> Analyzer:
    """The analyzer for ``config`` (default: the demo backend), loading it if needed.

    Raises ``AnalyzerUnavailable`` when the model cannot be loaded / reached.
    """
    global _owner_pid
    config = config or EngineConfig()
    with _lock:
        if os.getpid() != _owner_pid:
            # Forked after loading: the parent's models (and CUDA context) are not usable
            # here. Forget them without closing - they belong to the parent.
            _analyzers.clear()
            _owner_pid = os.getpid()
        analyzer = _analyzers.get(config)
        if analyzer is None:
            analyzer = _create(config)
            _analyzers[config] = analyzer
        return analyzer


def is_loaded(config: EngineConfig | None = None) -> bool:
    """Whether this process already holds the analyzer for ``config`` (the next
    ``get_analyzer`` is then immediate, not a load of the weights)."""
    config = config or EngineConfig()
    with _lock:
        return os.getpid() == _owner_pid and config in _analyzers


def reset_analyzers() -> None:
    """Close and forget every cached analyzer (tests; settings changes)."""
    with _lock:
        analyzers = list(_analyzers.values())
        _analyzers.clear()
    for analyzer in analyzers:
        analyzer.close()


def _create(config: EngineConfig) -> Analyzer:
    if config.backend == "openai_compatible":
        from .backends.openai_compatible import OpenAICompatibleAnalyzer

        return OpenAICompatibleAnalyzer(config)

    from .backends.transformers_backend import TransformersAnalyzer

    if config.backend == "demo":
        from .demo_model import DEMO_MODEL_ID, ensure_demo_model

        directory = str(ensure_demo_model(config.model_location))
        reference = TransformersAnalyzer(
            config,
            model_location=directory,
            backend_name="demo",
            model_id=DEMO_MODEL_ID,
            is_demo=True,
            cpu_threads=1,
        )
    else:
        reference = TransformersAnalyzer(config, model_location=config.model_location)
    analyzer = local_analyzer(reference)
    if config.warm_up:
        analyzer.warm_up()
    return analyzer


def local_analyzer(reference):
    """The analyzer for a loaded local model: the fast engine unless the configuration asks
    for the reference path (the fast engine itself falls back to the reference for a model
    it does not reproduce)."""
    config = reference.config
    if config.engine in ("fast", "auto"):
        from .backends.fast_backend import FastAnalyzer
        from .errors import AnalyzerUnavailable

        analyzer = FastAnalyzer(reference)
        if config.engine == "fast" and analyzer.unavailable_reason:
            # Asked for explicitly: say so rather than run slowly without anyone knowing.
            raise AnalyzerUnavailable(
                f"ANALYZER_ENGINE=fast, but the fast engine cannot run this model: {analyzer.unavailable_reason}. "
                "Use ANALYZER_ENGINE=auto (falls back to the reference path) or reference."
            )
        return analyzer
    return reference
