"""Where our own time per live frame goes: each step of the live path timed in one process,
on the services profile (PostgreSQL + Redis), with a zero-time stand-in for the model.

Steps, per frame: validate the JPEG (parse_live_frame), store it and make it the waiting
frame (live_frame_submit: hash, file write, insert, supersede), queue the GPU loop (Celery
publish to Redis), claim a batch (claim_batch), analyse + record + broadcast with a stand-in
that takes no time (services.frames_analyze: load the image, record the result, publish the
event through channels-redis). The broadcast is also timed alone.

    .venv/bin/python benchmarks/run_live_overhead.py --frames 200

Needs PostgreSQL and Redis on 127.0.0.1 (database medvision_bench, Redis db 14).
Writes benchmarks/results/live_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PG = "postgres://postgres@127.0.0.1:5432/medvision_bench"
REDIS = "redis://127.0.0.1:6379/14"


def setup():
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname='medvision_bench'").fetchone():
            conn.execute("CREATE DATABASE medvision_bench")
    env = {**os.environ, "DATABASE_URL": PG, "REDIS_URL": REDIS, "DJANGO_SETTINGS_MODULE": "medvision.settings",
           "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64), "DEBUG": "true",
           "MEDIA_ROOT": str(ROOT / "var" / "bench-media")}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY",
                                           "DEBUG", "MEDIA_ROOT")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def jpeg(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=80)
    return buf.getvalue()


class ZeroTimeAnalyzer:
    """Answers at once with a valid empty result: what is left is our own work."""

    def __init__(self):
        from analysis.engine import Provenance

        self.provenance_base = Provenance(backend="benchmark", model_id="zero-time (benchmark only)",
                                          model_revision="-", prompt_version="-", latency_ms=0, is_demo=True)

    def analyze(self, frames, procedure_type, kind="frame"):
        from analysis.engine import AnalysisResult
        from analysis.engine.schemas import live_model

        analysis = live_model(procedure_type).model_validate({"image_adequacy": "adequate", "no_finding": True,
                                                             "findings": []})
        return [AnalysisResult(frame_id=f.frame_id, timestamp_ms=f.timestamp_ms, ok=True, analysis=analysis,
                               error=None, raw_output="{}", provenance=self.provenance_base) for f in frames]


def summary(values):
    values = sorted(v * 1000 for v in values)
    return {"mean": round(statistics.fmean(values), 2), "p50": round(values[len(values) // 2], 2),
            "p95": round(values[min(len(values) - 1, int(0.95 * (len(values) - 1) + 0.5))], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    setup()

    from django.contrib.auth.models import Group, User

    from analysis import analyzer as analyzer_module
    from analysis import claims, dispatch, live, services
    from medvision import broadcast
    from medvision.celery import app
    from procedures.models import ProcedureSession

    analyzer_module.configured_analyzer = lambda: ZeroTimeAnalyzer()
    user, _ = User.objects.get_or_create(username="bench.overhead")
    user.groups.add(Group.objects.get(name="clinician"))
    session = ProcedureSession.objects.create(title="overhead", procedure_type="colonoscopy", mode="live",
                                              clinician=user, status="live")
    queued = []
    live._enqueue = queued.append  # the publish is timed on its own below
    payloads = [live.HEADER.pack(i * 333) + jpeg(i % 8) for i in range(args.frames)]
    steps = {name: [] for name in ("validate_jpeg", "store_frame", "queue_gpu_loop", "claim_batch",
                                   "analyse_record_broadcast", "broadcast_alone")}
    real_broadcast = broadcast.broadcast

    def timed_broadcast(session_id, event):
        started = time.perf_counter()
        real_broadcast(session_id, event)
        steps["broadcast_alone"].append(time.perf_counter() - started)

    broadcast.broadcast = timed_broadcast
    for payload in payloads:
        t0 = time.perf_counter()
        parsed = live.parse_live_frame(payload)
        t1 = time.perf_counter()
        live.live_frame_submit(session=session, frame=parsed)
        t2 = time.perf_counter()
        dispatch.send(dispatch.ANALYZE_LIVE, str(session.pk))
        t3 = time.perf_counter()
        claimed = claims.claim_batch()
        t4 = time.perf_counter()
        services.frames_analyze(frame_ids=claimed, states=("analysing",))
        t5 = time.perf_counter()
        for name, (a, b) in zip(list(steps)[:5], [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]):
            steps[name].append(b - a)
    app.control.purge()  # the published loop tasks: nobody consumes this database's queue
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "frames": args.frames, "frame_bytes": len(payloads[0]) - 8, "frame_size": "480x360",
        "steps_ms": {name: summary(values) for name, values in steps.items() if values},
    }
    per_frame = [sum(steps[name][i] for name in list(steps)[:5]) for i in range(args.frames)]
    result["total_ms"] = summary(per_frame)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live_overhead.json").write_text(json.dumps(result, indent=2))
    print(f"{'step':<26} {'mean':>7} {'P50':>7} {'P95':>7}   (ms per frame, {platform.processor() or platform.machine()})")
    for name, s in [*result["steps_ms"].items(), ("total", result["total_ms"])]:
        print(f"{name:<26} {s['mean']:>7.2f} {s['p50']:>7.2f} {s['p95']:>7.2f}")


if __name__ == "__main__":
    main()
