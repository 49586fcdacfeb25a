"""A scripted analyzer for tests that are about our plumbing, not about the model.

It returns real engine types validated by the real schemas, so everything downstream
(services, events, API) sees exactly what a model backend would produce.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from analysis.engine import AnalysisResult, Provenance, frame_model
from analysis.engine.schemas import live_model

PROVENANCE = Provenance(
    backend="fake", model_id="fake-analyzer", model_revision="test", prompt_version="frame-v1",
    generation_params={"do_sample": False}, latency_ms=5, is_demo=True, parsed_with="json",
)


def polyp_analysis(procedure_type="colonoscopy", *, location="sigmoid_colon", risk="medium", label="Polyp"):
    return frame_model(procedure_type).model_validate(
        {
            "image_adequacy": "adequate",
            "no_finding": False,
            "findings": [
                {"category": "polyp", "location": location, "risk": risk, "confidence": 0.8, "size_mm": 6,
                 "label": label, "description": "Sessile lesion.", "suggested_next_step": "Consider polypectomy."}
            ],
        }
    )


def live_polyp_analysis(procedure_type="colonoscopy", *, location="sigmoid_colon", risk="medium", label="Polyp"):
    """The live-frame (compact) answer with the same finding as ``polyp_analysis``."""
    return live_model(procedure_type).model_validate(
        {
            "image_adequacy": "adequate",
            "no_finding": False,
            "findings": [{"category": "polyp", "location": location, "risk": risk, "confidence": 80, "size_mm": 6,
                          "label": label}],
        }
    )


class FakeAnalyzer:
    def __init__(self, analysis=None, ok=True, error=None):
        self.analysis = analysis
        self.ok = ok
        self.error = error
        self.calls: list[int] = []
        self.kinds: list[str] = []

    @property
    def provenance_base(self):
        return PROVENANCE

    def analyze(self, frames, procedure_type, kind="frame"):
        self.calls.append(len(frames))
        self.kinds.append(kind)
        analysis = self.analysis or (live_polyp_analysis if kind == "live" else polyp_analysis)(procedure_type)
        return [
            AnalysisResult(
                frame_id=f.frame_id, timestamp_ms=f.timestamp_ms, ok=self.ok,
                analysis=analysis if self.ok else None, error=self.error,
                raw_output=analysis.model_dump_json() if self.ok else "{not json", provenance=PROVENANCE,
            )
            for f in frames
        ]

    def clarify(self, frame, procedure_type, question):  # pragma: no cover - not used here
        raise NotImplementedError

    def close(self):
        pass


def jpeg_bytes(width=64, height=48, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()
