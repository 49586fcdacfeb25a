"""MedVision analyzer engine: frames in, validated structured findings out.

Pure Python (no Django). Importing this package is cheap: torch, transformers, xgrammar
and openai are imported only when an analyzer is created or the demo model is built.

    from analysis.engine import EngineConfig, FrameInput, get_analyzer
    analyzer = get_analyzer(EngineConfig(backend="demo"))
    results = analyzer.analyze([FrameInput(image=rgb_array, timestamp_ms=1200)], "colonoscopy")
"""

from .config import BACKENDS, DEFAULT_MEDGEMMA_MODEL, EngineConfig, default_demo_model_dir
from .demo_model import DEMO_MODEL_ID, build_demo_model, ensure_demo_model, is_demo_model_dir
from .errors import AnalyzerError, AnalyzerUnavailable, OutOfMemory
from .fallback_parser import parse_model_output
from .prompts import CLARIFY_PROMPT_VERSION, LIVE_PROMPT_VERSION, PROMPT_VERSION
from .registry import get_analyzer, reset_analyzers
from .schemas import (
    CATEGORIES,
    IMAGE_ADEQUACY,
    LOCATIONS,
    MAX_FINDINGS,
    OUTPUT_KINDS,
    PROCEDURE_TYPES,
    RISK_LEVELS,
    ClarifyAnswer,
    Finding,
    FrameAnalysis,
    LiveFinding,
    LiveFrameAnalysis,
    choices,
    clarify_model,
    frame_model,
    humanize,
    json_schema_for,
    live_model,
    output_model,
)
from .types import AnalysisResult, Analyzer, ClarifyResult, FrameInput, Provenance

__all__ = [
    "BACKENDS",
    "CATEGORIES",
    "CLARIFY_PROMPT_VERSION",
    "DEFAULT_MEDGEMMA_MODEL",
    "DEMO_MODEL_ID",
    "IMAGE_ADEQUACY",
    "LIVE_PROMPT_VERSION",
    "LOCATIONS",
    "MAX_FINDINGS",
    "OUTPUT_KINDS",
    "PROCEDURE_TYPES",
    "PROMPT_VERSION",
    "RISK_LEVELS",
    "AnalysisResult",
    "Analyzer",
    "AnalyzerError",
    "AnalyzerUnavailable",
    "ClarifyAnswer",
    "ClarifyResult",
    "EngineConfig",
    "Finding",
    "FrameAnalysis",
    "FrameInput",
    "LiveFinding",
    "LiveFrameAnalysis",
    "OutOfMemory",
    "Provenance",
    "build_demo_model",
    "choices",
    "clarify_model",
    "default_demo_model_dir",
    "ensure_demo_model",
    "frame_model",
    "get_analyzer",
    "humanize",
    "is_demo_model_dir",
    "json_schema_for",
    "live_model",
    "output_model",
    "parse_model_output",
    "reset_analyzers",
]
