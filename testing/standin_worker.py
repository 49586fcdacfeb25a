"""A Celery worker whose analyzer sleeps like a batched model and returns a valid result.

Test and benchmark only: it replaces the model so that the live load test measures the
system's own overhead (WebSocket, validation, storage, scheduling, broker, broadcast), and
the scheduler's tests can run real worker processes with a model of known speed.
A batch of n frames takes BASE_MS + n * PER_FRAME_MS (a GPU batch costs a fixed part plus
a part per row); each result's provenance latency_ms is that batch's time, so a client can
subtract the model's share from the end-to-end latency.

Usage: python testing/standin_worker.py BASE_MS PER_FRAME_MS [celery worker args...]
With STANDIN_LOG=path, every analysed frame id is appended to that file (one per line), so a
test can prove that no frame was analysed twice.
"""

import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")

import django  # noqa: E402

django.setup()

from analysis import analyzer as analyzer_module  # noqa: E402
from analysis.engine import AnalysisResult, Provenance  # noqa: E402
from analysis.engine.schemas import frame_model, live_model  # noqa: E402

BASE_S, PER_FRAME_S = float(sys.argv[1]) / 1000, float(sys.argv[2]) / 1000
LOG = os.environ.get("STANDIN_LOG")
PROVENANCE = Provenance(backend="benchmark", model_id=f"stand-in {sys.argv[1]}+{sys.argv[2]}/frame ms (benchmark only)",
                        model_revision="-", prompt_version="-", latency_ms=0, is_demo=True)


class BatchedDelayAnalyzer:
    provenance_base = PROVENANCE

    def analyze(self, frames, procedure_type, kind="frame"):
        batch_s = BASE_S + PER_FRAME_S * len(frames)
        time.sleep(batch_s)
        if LOG:
            with open(LOG, "a") as log:
                log.writelines(f"{f.frame_id}\n" for f in frames)
        schema = live_model(procedure_type) if kind == "live" else frame_model(procedure_type)
        analysis = schema.model_validate({"image_adequacy": "adequate", "no_finding": True, "findings": []})
        provenance = dataclasses.replace(PROVENANCE, latency_ms=round(batch_s * 1000))
        return [AnalysisResult(frame_id=f.frame_id, timestamp_ms=f.timestamp_ms, ok=True, analysis=analysis, error=None,
                               raw_output="{}", provenance=provenance) for f in frames]


analyzer_module.configured_analyzer = lambda: BatchedDelayAnalyzer()

from medvision.celery import app  # noqa: E402

app.worker_main(["worker", *sys.argv[3:]])
