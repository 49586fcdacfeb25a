"""Live load test: N concurrent live clients streaming JPEG frames at F fps for a bounded
time against a real daphne + Redis + PostgreSQL + one GPU-queue worker whose analyzer is
replaced by a fixed-delay stand-in (benchmarks/fixed_delay_worker.py), so what is measured
is the system's own overhead.

Per analysed frame: latency from the frame leaving the client to its result event
arriving at the client; "added" latency = that minus the analyzer's fixed delay.
Also: frames sent, accepted, skipped by latest-frame-wins, errors.

    .venv/bin/python benchmarks/run_live_load_test.py --clients 10 --fps 3 --seconds 20 --delay-ms 50

Needs PostgreSQL and Redis on 127.0.0.1 (uses database medvision_bench and Redis db 14).
Loopback only; the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import secrets
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PG = "postgres://postgres@127.0.0.1:5432/medvision_bench"
REDIS = "redis://127.0.0.1:6379/14"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--fps", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--delay-ms", type=float, default=50.0)
    p.add_argument("--port", type=int, default=8765)
    return p.parse_args()


def prepare_database(clients: int):
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname='medvision_bench'").fetchone():
            conn.execute("CREATE DATABASE medvision_bench")
    env = {**os.environ, "DATABASE_URL": PG, "REDIS_URL": REDIS, "DJANGO_SETTINGS_MODULE": "medvision.settings",
           # The services profile has no built-in key; every process of this run shares one.
           "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(DATABASE_URL=PG, REDIS_URL=REDIS, DJANGO_SETTINGS_MODULE="medvision.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from procedures.models import ProcedureSession

    user, _ = User.objects.get_or_create(username="bench.clinician")
    user.groups.add(Group.objects.get(name="clinician"))
    token, _ = Token.objects.get_or_create(user=user)
    sessions = [ProcedureSession.objects.create(title=f"load test {i}", procedure_type="colonoscopy", mode="live",
                                                clinician=user) for i in range(clients)]
    return token.key, [str(s.pk) for s in sessions], env


def jpeg(seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


async def client(port, token, session_id, fps, seconds, frames, stats):
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/procedures/{session_id}/live/"
    sent_at: dict[str, float] = {}
    pending_sends: list[float] = []
    latencies = []
    async with websockets.connect(url, additional_headers={"Authorization": f"Token {token}"}, max_size=2**22) as ws:
        async def reader():
            async for message in ws:
                event = json.loads(message)
                now = time.perf_counter()
                if event["type"] == "status" and "accepted" in event:
                    sent_at[event["accepted"]] = pending_sends.pop(0)
                    stats["accepted"] += 1
                    stats["dropped"][session_id] = event["dropped"]
                elif event["type"] == "error":
                    stats["errors"] += 1
                    if pending_sends:
                        pending_sends.pop(0)
                elif event["type"] == "frame" and event["frame"]["analysis_state"] == "done":
                    started = sent_at.pop(event["frame"]["id"], None)
                    if started is not None:
                        latencies.append(now - started)

        read_task = asyncio.create_task(reader())
        start = time.perf_counter()
        i = 0
        while time.perf_counter() - start < seconds:
            ts = int((time.perf_counter() - start) * 1000)
            pending_sends.append(time.perf_counter())
            await ws.send(struct.pack(">Q", ts) + frames[i % len(frames)])
            stats["sent"] += 1
            i += 1
            await asyncio.sleep(max(0.0, start + i / fps - time.perf_counter()))
        await asyncio.sleep(2.0)  # let the last results arrive
        read_task.cancel()
    stats["latencies"].extend(latencies)


def wait_http(url, timeout=60):
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    args = parse_args()
    token, sessions, env = prepare_database(args.clients)
    logs = RESULTS / "live_load_logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen([sys.executable, "benchmarks/fixed_delay_worker.py", str(args.delay_ms), "-Q", "gpu,celery",
                          "-c", "1", "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip", "-l", "WARNING"],
                         cwd=ROOT, env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "medvision.serve", "-b", "127.0.0.1", "-p", str(args.port)],
                         cwd=ROOT, env={**env, "DEBUG": "true"},
                         stdout=open(logs / "daphne.log", "w"), stderr=subprocess.STDOUT),
    ]
    try:
        wait_http(f"http://127.0.0.1:{args.port}/healthz")
        time.sleep(3)  # worker ready
        frames = [jpeg(i) for i in range(8)]
        stats = {"sent": 0, "accepted": 0, "errors": 0, "dropped": {}, "latencies": []}

        async def run_all():
            await asyncio.gather(*(client(args.port, token, s, args.fps, args.seconds, frames, stats) for s in sessions))

        asyncio.run(run_all())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    lat_ms = [x * 1000 for x in stats["latencies"]]
    added = [x - args.delay_ms for x in lat_ms]
    dropped = sum(stats["dropped"].values())
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
        "config": vars(args),
        "frames_sent": stats["sent"], "frames_accepted": stats["accepted"], "frames_analysed": len(lat_ms),
        "frames_skipped_latest_wins": dropped, "errors": stats["errors"],
        "latency_ms": {"p50": pct(lat_ms, 50), "p95": pct(lat_ms, 95)},
        "added_latency_ms": {"p50": pct(added, 50), "p95": pct(added, 95), "mean": statistics.fmean(added) if added else None},
        "analyzer_capacity_fps": 1000 / args.delay_ms,
        "offered_fps": args.clients * args.fps,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"live_load_{args.clients}x{args.fps:g}.json").write_text(json.dumps(result, indent=2))
    print(f"{'clients':>8} {'fps':>5} {'sent':>6} {'analysed':>9} {'skipped':>8} {'errors':>7} "
          f"{'P50 ms':>8} {'P95 ms':>8} {'added P50':>10} {'added P95':>10}")
    print(f"{args.clients:>8} {args.fps:>5g} {stats['sent']:>6} {len(lat_ms):>9} {dropped:>8} {stats['errors']:>7} "
          f"{result['latency_ms']['p50']:>8.1f} {result['latency_ms']['p95']:>8.1f} "
          f"{result['added_latency_ms']['p50']:>10.1f} {result['added_latency_ms']['p95']:>10.1f}")


if __name__ == "__main__":
    main()
