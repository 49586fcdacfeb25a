"""A Celery worker whose analyzer sleeps a fixed time and returns a fixed valid result.

Benchmark-only: it replaces the model so that the load test measures the system's own
overhead (WebSocket, validation, storage, scheduling, broker, broadcast), not the model.
Usage: python benchmarks/fixed_delay_worker.py DELAY_MS [celery worker args...]
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")

import django  # noqa: E402

django.setup()

from analysis import analyzer as analyzer_module  # noqa: E402
from analysis.engine import AnalysisResult, Provenance, frame_model  # noqa: E402

DELAY_S = float(sys.argv[1]) / 1000
PROVENANCE = Provenance(backend="benchmark", model_id=f"fixed-delay-{sys.argv[1]}ms (benchmark only)",
                        model_revision="-", prompt_version="-", latency_ms=int(DELAY_S * 1000), is_demo=True)


class FixedDelayAnalyzer:
    provenance_base = PROVENANCE

    def analyze(self, frames, procedure_type, kind="frame"):
        time.sleep(DELAY_S * len(frames))
        analysis = frame_model(procedure_type).model_validate({"image_adequacy": "adequate", "no_finding": True,
                                                              "findings": []})
        return [AnalysisResult(frame_id=f.frame_id, timestamp_ms=f.timestamp_ms, ok=True, analysis=analysis, error=None,
                               raw_output="{}", provenance=PROVENANCE) for f in frames]


analyzer_module.configured_analyzer = lambda: FixedDelayAnalyzer()

from medvision.celery import app  # noqa: E402

app.worker_main(["worker", *sys.argv[2:]])
