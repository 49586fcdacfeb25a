"""The values that cross the engine's boundary: frames in, results out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from .schemas import ClarifyAnswer, FrameAnalysis


@dataclass
class FrameInput:
    # HxWx3 uint8 RGB numpy array or a PIL.Image (any mode; converted to RGB).
    image: Any
    timestamp_ms: int
    # Opaque to the engine; echoed back on the result so the caller can match them up.
    frame_id: str | None = None


@dataclass(frozen=True)
class Provenance:
    backend: str
    model_id: str
    # The revision asked for, the hub commit actually loaded, or "sha256:<hex>" of the
    # weights files of a local directory.
    model_revision: str
    prompt_version: str
    generation_params: dict[str, Any] = field(default_factory=dict)
    # Wall time of the batch divided by the number of frames in it (frames of one batch
    # are generated together, so a per-frame time does not exist).
    latency_ms: int = 0
    is_demo: bool = False
    # How the answer became a structured object: "json" (the whole output was the JSON
    # object) or "json_extracted" (a JSON object found inside a code fence or prose).
    parsed_with: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnalysisResult:
    frame_id: str | None
    timestamp_ms: int
    ok: bool
    analysis: FrameAnalysis | None
    # When ok is False: a sentence saying what went wrong and what to do about it.
    error: str | None
    raw_output: str
    provenance: Provenance


@dataclass
class ClarifyResult:
    frame_id: str | None
    timestamp_ms: int
    question: str
    ok: bool
    answer: ClarifyAnswer | None
    error: str | None
    raw_output: str
    provenance: Provenance


@runtime_checkable
class Analyzer(Protocol):
    """What every backend offers. Obtain one with ``get_analyzer(config)``."""

    @property
    def provenance_base(self) -> Provenance:
        """Provenance shared by all of this analyzer's results (latency 0, the frame
        prompt version, no parser yet): for recording which model a session used."""
        ...

    def analyze(self, frames: list[FrameInput], procedure_type: str, kind: str = "frame") -> list[AnalysisResult]:
        """One result per frame, in order. ``kind``: "frame" (recorded video: the full
        answer) or "live" (the compact live answer)."""
        ...

    def clarify(self, frame: FrameInput, procedure_type: str, question: str) -> ClarifyResult:
        """Look at one frame again and answer a clinician's question about it."""
        ...

    def close(self) -> None:
        """Release the model / connections. The analyzer is unusable afterwards."""
        ...
