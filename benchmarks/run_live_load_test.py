"""Live load test: several rooms streaming JPEG frames at F fps for a bounded time against
a real daphne + Redis + PostgreSQL + one GPU-queue worker (``-Q gpu -c 1``) whose analyzer is
replaced by a batched stand-in (testing/standin_worker.py: a batch of n frames takes
BASE + n * PER_FRAME ms), so what is measured is the scheduler and the system's own overhead.

For each room count (one after the other, same processes):
- staleness: how old a frame is when its result reaches the room (result time - send time),
  P50/P95 over all results; and the gap between two results of a room, P50/P95;
- added: staleness minus the stand-in's time for the batch that analysed the frame (our own
  work plus any wait behind the batch already on the GPU), P50/P95;
- fairness: results of the least-served room / results of the best-served room;
- analysed frames/s against what the stand-in allows: min(offered fps, capacity), capacity =
  b / (BASE + b * PER_FRAME) with b = min(rooms, batch size).

    .venv/bin/python benchmarks/run_live_load_test.py --rooms 2,10,30 --fps 3 --seconds 15

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
    p.add_argument("--rooms", default="2,10,30", help="comma-separated room counts, run one after the other")
    p.add_argument("--fps", type=float, default=3.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--base-ms", type=float, default=40.0)
    p.add_argument("--per-frame-ms", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--port", type=int, default=8765)
    return p.parse_args()


def prepare_database():
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname='medvision_bench'").fetchone():
            conn.execute("CREATE DATABASE medvision_bench")
    env = {**os.environ, "DATABASE_URL": PG, "REDIS_URL": REDIS, "DJANGO_SETTINGS_MODULE": "medvision.settings",
           # The services profile has no built-in key; every process of this run shares one.
           "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64),
           # A loopback benchmark, not a deployment (no HTTPS, no host list).
           "DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(DATABASE_URL=PG, REDIS_URL=REDIS, DJANGO_SETTINGS_MODULE="medvision.settings", DEBUG="true",
                      SECRET_KEY=env["SECRET_KEY"])
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from procedures.models import ProcedureSession

    user, _ = User.objects.get_or_create(username="bench.clinician")
    user.groups.add(Group.objects.get(name="clinician"))
    token, _ = Token.objects.get_or_create(user=user)

    def new_rooms(n):
        return [str(ProcedureSession.objects.create(title=f"load test {i}", procedure_type="colonoscopy", mode="live",
                                                    clinician=user).pk) for i in range(n)]

    return token.key, new_rooms, env


def jpeg(seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


async def room(port, token, session_id, fps, seconds, frames, stats, phase_s=0.0):
    """One room: stream for ``seconds``, then wait a little for the last results."""
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/procedures/{session_id}/live/"
    sent_at: dict[str, float] = {}
    pending_sends: list[float] = []
    wall_sent: dict[str, float] = {}
    pending_walls: list[float] = []
    mine = stats["rooms"].setdefault(session_id, {"sent": 0, "results": [], "errors": 0, "dropped": 0, "wall": {}})
    async with websockets.connect(url, additional_headers={"Authorization": f"Token {token}"}, max_size=2**22) as ws:
        async def reader():
            async for message in ws:
                event = json.loads(message)
                now = time.perf_counter()
                if event["type"] == "status" and "accepted" in event:
                    sent_at[event["accepted"]] = pending_sends.pop(0)
                    wall_sent[event["accepted"]] = pending_walls.pop(0)
                    mine["dropped"] = event["dropped"]
                elif event["type"] == "error":
                    mine["errors"] += 1
                    if pending_sends:
                        pending_sends.pop(0)
                        pending_walls.pop(0)
                elif event["type"] == "frame" and event["frame"]["analysis_state"] == "done":
                    started = sent_at.pop(event["frame"]["id"], None)
                    if started is not None:  # (now, staleness s, the stand-in's batch time s)
                        mine["results"].append((now, now - started, (event["frame"]["latency_ms"] or 0) / 1000))
                        # Wall-clock ends, to line up with the server's timestamps afterwards.
                        mine["wall"][event["frame"]["id"]] = (wall_sent.pop(event["frame"]["id"]), time.time())

        read_task = asyncio.create_task(reader())
        # Rooms are not in step: each starts at its own point of the frame interval (all in
        # step, every room's frame would land in the same instant, a worst case no real
        # set of endoscopy towers produces).
        await asyncio.sleep(phase_s)
        start = time.perf_counter()
        i = 0
        while time.perf_counter() - start < seconds:
            ts = int((time.perf_counter() - start) * 1000)
            pending_sends.append(time.perf_counter())
            pending_walls.append(time.time())
            await ws.send(struct.pack(">Q", ts) + frames[i % len(frames)])
            mine["sent"] += 1
            i += 1
            await asyncio.sleep(max(0.0, start + i / fps - time.perf_counter()))
        await asyncio.sleep(2.0)  # let the last results arrive
        read_task.cancel()


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


def breakdown(stats) -> dict:
    """Where each analysed frame's time went, from the client's wall-clock send/receive times
    and the server's own timestamps (same machine, same clock): ingest (socket, validation,
    storage: until the row exists), wait for the GPU to be free (the batch already running
    when the frame arrived: scheduling, not overhead), claim delay (from a free GPU, or the
    frame's arrival, to its claim), the stand-in's batch time, record (result written and
    committed), deliver (broadcast to the room's socket). Our overhead = all but the batch
    time and the wait for a busy GPU."""
    from analysis.models import Frame

    wall = {fid: t for room in stats["rooms"].values() for fid, t in room["wall"].items()}
    rows = list(Frame.objects.filter(pk__in=list(wall)).values_list(
        "pk", "created_at", "claimed_at", "analysed_at", "claimed_by", "latency_ms"))
    batches: dict[str, tuple[float, float]] = {}
    for _, _, claimed, analysed, token, _ in rows:
        start, end = batches.get(token, (claimed.timestamp(), analysed.timestamp()))
        batches[token] = (min(start, claimed.timestamp()), max(end, analysed.timestamp()))
    parts = {k: [] for k in ("ingest", "gpu_busy_wait", "claim_delay", "batch", "record", "deliver", "overhead")}
    for pk, created, claimed, analysed, token, latency_ms in rows:
        sent, received = wall[str(pk)]
        created, claimed, analysed = created.timestamp(), claimed.timestamp(), analysed.timestamp()
        busy_until = max([end for start, end in batches.values() if start <= created < end] or [created])
        busy = max(0.0, min(busy_until, claimed) - created)
        batch = (latency_ms or 0) / 1000
        values = {"ingest": created - sent, "gpu_busy_wait": busy, "claim_delay": claimed - created - busy,
                  "batch": batch, "record": analysed - claimed - batch, "deliver": received - analysed}
        values["overhead"] = (received - sent) - batch - busy
        for key, value in values.items():
            parts[key].append(value * 1000)
    return {key: {"p50": pct(v, 50), "p95": pct(v, 95)} for key, v in parts.items()}


def report(n_rooms, args, stats, elapsed_s):
    rooms = list(stats["rooms"].values())
    results = [r for room in rooms for r in room["results"]]
    stale = [r[1] * 1000 for r in results]
    added = [(r[1] - r[2]) * 1000 for r in results]
    gaps = [(b[0] - a[0]) * 1000 for room in rooms for a, b in zip(room["results"], room["results"][1:])]
    served = [len(room["results"]) for room in rooms]
    b = min(n_rooms, args.batch_size)
    capacity = b / ((args.base_ms + b * args.per_frame_ms) / 1000)
    offered = n_rooms * args.fps
    analysed_fps = len(results) / elapsed_s
    allowed = min(offered, capacity)
    return {
        "rooms": n_rooms, "fps_per_room": args.fps, "seconds": args.seconds,
        "frames_sent": sum(room["sent"] for room in rooms), "frames_analysed": len(results),
        "frames_skipped_latest_wins": sum(room["dropped"] for room in rooms),
        "errors": sum(room["errors"] for room in rooms),
        "staleness_ms": {"p50": pct(stale, 50), "p95": pct(stale, 95)},
        "result_gap_ms": {"p50": pct(gaps, 50), "p95": pct(gaps, 95)},
        "added_ms": {"p50": pct(added, 50), "p95": pct(added, 95)},
        "fairness_least_over_most": round(min(served) / max(served), 3) if served and max(served) else 0.0,
        "analysed_fps": round(analysed_fps, 2), "offered_fps": offered, "stand_in_capacity_fps": round(capacity, 2),
        "analysed_over_allowed": round(analysed_fps / allowed, 3),
        "per_frame_ms": breakdown(stats),
    }


def main():
    args = parse_args()
    token, new_rooms, env = prepare_database()
    logs = RESULTS / "live_load_logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**env, "ANALYZER_BATCH_SIZE": str(args.batch_size)}
    procs = [
        subprocess.Popen([sys.executable, "testing/standin_worker.py", str(args.base_ms), str(args.per_frame_ms),
                          "-Q", "gpu,celery", "-c", "1", "--prefetch-multiplier", "1", "--without-mingle",
                          "--without-gossip", "-l", "WARNING"],
                         cwd=ROOT, env=env, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "medvision.serve", "-b", "127.0.0.1", "-p", str(args.port)],
                         cwd=ROOT, env={**env, "DEBUG": "true"},
                         stdout=open(logs / "daphne.log", "w"), stderr=subprocess.STDOUT),
    ]
    runs = []
    try:
        wait_http(f"http://127.0.0.1:{args.port}/healthz")
        time.sleep(3)  # worker ready
        frames = [jpeg(i) for i in range(8)]
        for n_rooms in [int(n) for n in args.rooms.split(",")]:
            sessions = new_rooms(n_rooms)
            stats = {"rooms": {}}

            async def run_all():
                await asyncio.gather(*(room(args.port, token, s, args.fps, args.seconds, frames, stats,
                                            phase_s=i / (len(sessions) * args.fps))
                                       for i, s in enumerate(sessions)))

            asyncio.run(run_all())
            runs.append(report(n_rooms, args, stats, args.seconds))
            time.sleep(2)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "config": vars(args), "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live_load.json").write_text(json.dumps(result, indent=2))
    print(f"{'rooms':>5} {'sent':>6} {'done':>6} {'fps':>6} {'/allow':>6} {'fair':>5} {'stale50':>8} {'stale95':>8} "
          f"{'gap50':>7} {'gap95':>7} {'add50':>7} {'add95':>7} {'ovh50':>7} {'ovh95':>7}")
    for r in runs:
        print(f"{r['rooms']:>5} {r['frames_sent']:>6} {r['frames_analysed']:>6} {r['analysed_fps']:>6.1f} "
              f"{r['analysed_over_allowed']:>6.2f} {r['fairness_least_over_most']:>5.2f} "
              f"{r['staleness_ms']['p50']:>8.1f} {r['staleness_ms']['p95']:>8.1f} {r['result_gap_ms']['p50']:>7.1f} "
              f"{r['result_gap_ms']['p95']:>7.1f} {r['added_ms']['p50']:>7.1f} {r['added_ms']['p95']:>7.1f} "
              f"{r['per_frame_ms']['overhead']['p50']:>7.1f} {r['per_frame_ms']['overhead']['p95']:>7.1f}")
    for r in runs:
        print(f"{r['rooms']:>3} rooms, P50/P95 ms: " + ", ".join(
            f"{k} {v['p50']:.1f}/{v['p95']:.1f}" for k, v in r["per_frame_ms"].items()))


if __name__ == "__main__":
    main()
