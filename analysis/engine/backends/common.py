"""Pieces every backend shares: argument checks and result assembly."""

from __future__ import annotations

import time
from typing import Any

from ..fallback_parser import ParseOutcome, parse_model_output
from ..schemas import OUTPUT_KINDS, PROCEDURE_TYPES
from ..types import AnalysisResult, ClarifyResult, FrameInput, Provenance


def check_procedure_type(procedure_type: str) -> None:
    if procedure_type not in PROCEDURE_TYPES:
        raise ValueError(
            f"Unknown procedure type {procedure_type!r}; use one of {', '.join(PROCEDURE_TYPES)}."
        )


def check_kind(kind: str) -> None:
    """Kinds ``analyze`` answers (clarify has its own method)."""
    if kind not in OUTPUT_KINDS or kind == "clarify":
        raise ValueError(f"Unknown frame answer kind {kind!r}; use 'frame' (recorded) or 'live'.")


def check_analyze_arguments(frames: list[FrameInput], procedure_type: str, kind: str) -> None:
    """What every backend's ``analyze`` checks before any work (a ValueError/TypeError
    names the bad argument)."""
    check_procedure_type(procedure_type)
    check_kind(kind)
    check_frames(frames)


def check_frames(frames: list[FrameInput]) -> None:
    for index, frame in enumerate(frames):
        if not isinstance(frame, FrameInput):
            raise TypeError(f"frames[{index}] is a {type(frame).__name__}, not a FrameInput.")


def split_latency_ms(elapsed_s: float, frame_count: int) -> int:
    """Batch wall time split evenly over its frames: the frames of a batch are generated
    together, so no frame has a latency of its own."""
    return round(elapsed_s * 1000 / max(frame_count, 1))


def per_frame_latency_ms(started: float, frame_count: int) -> int:
    """``split_latency_ms`` for a batch that started at ``started`` (perf_counter)."""
    return split_latency_ms(time.perf_counter() - started, frame_count)


def provenance(base: Provenance, **changes: Any) -> Provenance:
    values = base.as_dict()
    values.update(changes)
    values["generation_params"] = dict(values["generation_params"])
    return Provenance(**values)


def frame_result(
    frame: FrameInput,
    raw: str,
    base: Provenance,
    latency_ms: int,
    procedure_type: str,
    failure: str | None = None,
    kind: str = "frame",
) -> AnalysisResult:
    """A result from the model's text. ``failure`` short-cuts parsing (truncation, a
    transport error): the raw text is still kept."""
    outcome = (
        ParseOutcome(None, None, failure)
        if failure is not None
        else parse_model_output(raw, procedure_type, kind)
    )
    return AnalysisResult(
        frame_id=frame.frame_id,
        timestamp_ms=frame.timestamp_ms,
        ok=outcome.ok,
        analysis=outcome.value,  # type: ignore[arg-type]
        error=outcome.error,
        raw_output=raw,
        provenance=provenance(base, latency_ms=latency_ms, parsed_with=outcome.parsed_with),
    )


def clarify_result(
    frame: FrameInput,
    question: str,
    raw: str,
    base: Provenance,
    latency_ms: int,
    procedure_type: str,
    failure: str | None = None,
) -> ClarifyResult:
    outcome = (
        ParseOutcome(None, None, failure)
        if failure is not None
        else parse_model_output(raw, procedure_type, "clarify")
    )
    return ClarifyResult(
        frame_id=frame.frame_id,
        timestamp_ms=frame.timestamp_ms,
        question=question,
        ok=outcome.ok,
        answer=outcome.value,  # type: ignore[arg-type]
        error=outcome.error,
        raw_output=raw,
        provenance=provenance(base, latency_ms=latency_ms, parsed_with=outcome.parsed_with),
    )
