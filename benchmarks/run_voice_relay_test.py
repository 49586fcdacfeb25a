#!/usr/bin/env python
"""Benchmark: what the voice relay adds to each audio chunk, and how much audio it sustains.

Everything on loopback, nothing leaves the machine:

  fake     the fake Realtime server of the tests (voice/tests/fake_realtime.py) in echo
           mode: every input_audio_buffer.append comes straight back as a
           response.output_audio.delta of the same audio;
  relay    a real daphne (medvision.asgi, embedded profile, SQLite in a temporary folder)
           with OPENAI_REALTIME_BASE_URL pointing at the fake;
  client   this script, a websockets client authenticated with an API token.

Measured in one run, interleaved so both paths see the same machine state:

  latency  one chunk at a time, round trip of a chunk:
           via relay  client -binary-> daphne -JSON/base64-> fake -JSON/base64-> daphne -binary-> client
           direct     client -JSON/base64-> fake -JSON/base64-> client (what the relay itself talks)
           added latency = via relay - direct, per pair of rounds; P50 / P95 reported.
  throughput  --window chunks kept in flight for --seconds: chunks/s echoed back through the
           relay, and the real-time factor (seconds of 24 kHz PCM16 relayed per second).

Prints a table and writes benchmarks/results/voice_relay.json.

    python benchmarks/run_voice_relay_test.py [--rounds 300] [--seconds 5] [--window 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "voice_relay.json"
PY = sys.executable
API_KEY = "bench-key"
BYTES_PER_MS = 48  # PCM16 at 24 kHz, mono

from websockets.asyncio.client import connect  # noqa: E402

from benchmarks.support.bench_support import cpu_model_name  # noqa: E402
from voice.tests.fake_realtime import FakeRealtime, pcm_tone  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relay_env(var_dir: Path, fake_url: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_API_KEY_FILE")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "medvision.settings",
            "VAR_DIR": str(var_dir),
            "DEBUG": "true",
            "CELERY_EMBEDDED_WORKER": "false",
            "LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_REALTIME_BASE_URL": fake_url,
            # This measures the relay's own capacity, far beyond real time: the per-socket
            # audio limit (2x real time by default) is switched off here.
            "VOICE_AUDIO_MAX_REALTIME_FACTOR": "0",
        }
    )
    return env


SETUP = """
import json
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from procedures.tests.factories import ProcedureSessionFactory, UserFactory
user = UserFactory(username="bench.clinician", role="clinician")
session = ProcedureSessionFactory(clinician=user)
print(json.dumps({"token": Token.objects.get_or_create(user=user)[0].key, "session": str(session.pk)}))
"""


def prepare(env: dict) -> dict:
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", SETUP],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


async def wait_for_port(port: int, process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError("daphne did not start")


class RelayClient:
    """The browser's side: binary audio out, binary audio back (JSON events skipped)."""

    def __init__(self, ws):
        self.ws = ws

    async def ready(self, timeout=30):
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.recv()
                if isinstance(message, str):
                    event = json.loads(message)
                    if event.get("type") == "error":
                        raise RuntimeError(event)
                    if event.get("type") == "status" and event.get("state") == "ready":
                        return

    async def send(self, chunk: bytes):
        await self.ws.send(chunk)

    async def recv_audio(self) -> int:
        while True:
            message = await self.ws.recv()
            if isinstance(message, bytes):
                return len(message)


class DirectClient:
    """The relay's upstream side, spoken directly: JSON with base64 audio both ways."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, chunk: bytes):
        await self.ws.send('{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(chunk).decode() + '"}')

    async def recv_audio(self) -> int:
        while True:
            event = json.loads(await self.ws.recv())
            if event.get("type") == "response.output_audio.delta":
                return len(base64.b64decode(event["delta"]))


async def round_trip(client, chunk: bytes) -> float:
    t0 = time.perf_counter()
    await client.send(chunk)
    got = await client.recv_audio()
    elapsed = time.perf_counter() - t0
    assert got == len(chunk), (got, len(chunk))
    return elapsed * 1000


async def throughput(client, chunk: bytes, seconds: float, window: int) -> dict:
    """Keep ``window`` chunks in flight for ``seconds``; count what comes back."""
    sent = received = 0
    stop = time.perf_counter() + seconds
    credits = asyncio.Semaphore(window)

    async def sender():
        nonlocal sent
        while time.perf_counter() < stop:
            await credits.acquire()
            await client.send(chunk)
            sent += 1

    async def receiver():
        nonlocal received
        while received < sent or time.perf_counter() < stop:
            await client.recv_audio()
            received += 1
            credits.release()

    t0 = time.perf_counter()
    async with asyncio.timeout(seconds + 30):
        await asyncio.gather(sender(), receiver())
    wall = time.perf_counter() - t0
    chunk_ms = len(chunk) / BYTES_PER_MS
    return {
        "chunks": received,
        "wall_s": round(wall, 3),
        "chunks_per_s": round(received / wall, 1),
        "realtime_factor": round(received * chunk_ms / 1000 / wall, 1),
    }


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def measure(args, relay_url: str, fake: FakeRealtime) -> dict:
    results = {"latency": {}, "throughput": {}}
    direct_url = f"{fake.url}/realtime?model=bench"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        connect(relay_url, max_size=None, compression=None) as relay_ws,
        connect(direct_url, additional_headers=headers, max_size=None, compression=None) as direct_ws,
    ):
        relay, direct = RelayClient(relay_ws), DirectClient(direct_ws)
        await relay.ready()
        for chunk_ms in args.chunk_ms:
            chunk = pcm_tone(chunk_ms)
            for _ in range(args.warmup):
                await round_trip(relay, chunk)
                await round_trip(direct, chunk)
            via, dir_, added = [], [], []
            for i in range(args.rounds):
                # Alternate which goes first, so neither always follows the other.
                if i % 2:
                    a = await round_trip(relay, chunk)
                    b = await round_trip(direct, chunk)
                else:
                    b = await round_trip(direct, chunk)
                    a = await round_trip(relay, chunk)
                via.append(a)
                dir_.append(b)
                added.append(a - b)
            results["latency"][f"{chunk_ms}ms"] = {
                "chunk_bytes": len(chunk),
                "rounds": args.rounds,
                "via_relay_ms": {"p50": round(percentile(via, 50), 3), "p95": round(percentile(via, 95), 3)},
                "direct_ms": {"p50": round(percentile(dir_, 50), 3), "p95": round(percentile(dir_, 95), 3)},
                "added_ms": {
                    "p50": round(percentile(added, 50), 3),
                    "p95": round(percentile(added, 95), 3),
                    "mean": round(statistics.fmean(added), 3),
                },
            }
        for chunk_ms in args.chunk_ms:
            chunk = pcm_tone(chunk_ms)
            results["throughput"][f"{chunk_ms}ms"] = {
                "via_relay": await throughput(relay, chunk, args.seconds, args.window),
                "direct": await throughput(direct, chunk, args.seconds, args.window),
            }
    return results


def machine() -> dict:
    model = cpu_model_name()
    from importlib.metadata import version

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **{p: version(p) for p in ("daphne", "channels", "websockets", "openai")},
    }


def table(results: dict) -> str:
    lines = [
        "",
        "Latency per chunk, one in flight (ms)",
        f"{'chunk':>7} {'relay p50':>10} {'relay p95':>10} {'direct p50':>11} {'direct p95':>11} "
        f"{'added p50':>10} {'added p95':>10}",
    ]
    for name, r in results["latency"].items():
        lines.append(
            f"{name:>7} {r['via_relay_ms']['p50']:>10.2f} {r['via_relay_ms']['p95']:>10.2f} "
            f"{r['direct_ms']['p50']:>11.2f} {r['direct_ms']['p95']:>11.2f} "
            f"{r['added_ms']['p50']:>10.2f} {r['added_ms']['p95']:>10.2f}"
        )
    lines += [
        "",
        f"Throughput, {results['config']['window']} chunks in flight for {results['config']['seconds']} s",
        f"{'chunk':>7} {'relay chunks/s':>15} {'relay x realtime':>17} {'direct chunks/s':>16} "
        f"{'direct x realtime':>18}",
    ]
    for name, r in results["throughput"].items():
        lines.append(
            f"{name:>7} {r['via_relay']['chunks_per_s']:>15.1f} {r['via_relay']['realtime_factor']:>17.1f} "
            f"{r['direct']['chunks_per_s']:>16.1f} {r['direct']['realtime_factor']:>18.1f}"
        )
    return "\n".join(lines)


async def run(args) -> dict:
    async with FakeRealtime(api_key=API_KEY, echo_audio=True) as fake:
        with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
            env = relay_env(Path(tmp), fake.url)
            ids = await asyncio.to_thread(prepare, env)
            port = free_port()
            daphne = subprocess.Popen(
                [PY, "-m", "medvision.serve", "-b", "127.0.0.1", "-p", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                await wait_for_port(port, daphne)
                relay_url = f"ws://127.0.0.1:{port}/ws/procedures/{ids['session']}/voice/?token={ids['token']}"
                results = await measure(args, relay_url, fake)
            finally:
                daphne.terminate()
                try:
                    daphne.wait(10)
                except subprocess.TimeoutExpired:
                    daphne.kill()
    results["config"] = {
        "rounds": args.rounds,
        "warmup": args.warmup,
        "seconds": args.seconds,
        "window": args.window,
        "chunk_ms": args.chunk_ms,
        "server": "daphne (1 process), embedded profile",
        "relay_to_fake": "loopback",
        "client_and_fake": "same process as this script",
    }
    results["machine"] = machine()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--chunk-ms", type=int, nargs="+", default=[20, 100])
    args = parser.parse_args()
    results = asyncio.run(asyncio.wait_for(run(args), timeout=600))
    print(table(results))
    print(f"\nMachine: {results['machine']['cpu_model']}, {results['machine']['cores']} cores")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
