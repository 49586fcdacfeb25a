"""Upload throughput and server memory for one large recording: single request vs tus.

A real daphne (embedded profile, SQLite in a temporary folder, no worker: what is measured
is receiving the file, not analysing it) gets the same generated MPEG-2 TS twice, each time
from a fresh server process:
- single request: one multipart POST to /api/v1/procedures/{id}/video/ (the limit for one
  request, VIDEO_SINGLE_REQUEST_MAX_BYTES, is raised for this run only);
- tus: tuspy, CHUNK-byte PATCHes to /api/v1/procedures/{id}/uploads/, sha1 per chunk.
For each: wall time until the server answered, MiB/s, the server's resident memory before
and at its peak (sampled every 20 ms from /proc), and the growth. The single request is
stopped (server killed) if the server grows past --guard-gib, so the machine survives.

    .venv/bin/python benchmarks/run_upload_test.py --gib 1

Loopback only; writes benchmarks/results/upload_<utc date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MIB = 1024**2


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=1.0, help="size of the generated recording")
    p.add_argument("--chunk-mib", type=int, default=8, help="tus chunk size")
    p.add_argument("--guard-gib", type=float, default=14.0, help="kill the server past this resident size")
    return p.parse_args()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    def __init__(self, proc, guard: int):
        super().__init__(daemon=True)
        self.proc, self.guard, self.peak, self.killed = proc, guard, 0, False
        self.baseline = rss(proc.pid)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.02):
            try:
                now = rss(self.proc.pid)
            except OSError:
                return
            self.peak = max(self.peak, now)
            if now > self.guard:
                self.killed = True
                self.proc.send_signal(signal.SIGKILL)
                return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, log: Path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "medvision.serve", "-b", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not start; see {log}")


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def make_recording(path: Path, size: int) -> None:
    sys.path.insert(0, str(ROOT))
    from testing.videos import run_ffmpeg

    frames = size // (900 * 1024) + 25
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25,noise=alls=100:allf=t+u", "-frames:v", str(frames),
                "-c:v", "mpeg2video", "-q:v", "1", "-g", "1", "-f", "mpegts", str(path)])


def setup(env: dict):
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from procedures.models import ProcedureSession

    user, _ = User.objects.get_or_create(username="bench.clinician")
    user.groups.add(Group.objects.get(name="clinician"))
    token, _ = Token.objects.get_or_create(user=user)

    def new_session():
        return str(ProcedureSession.objects.create(title="upload benchmark", procedure_type="colonoscopy",
                                                   mode="recorded", clinician=user).pk)

    return token.key, new_session


class MultipartFile:
    """A multipart/form-data body around a file, read as it is sent (the client side must
    not be what runs out of memory); ``len()`` gives requests its Content-Length."""

    def __init__(self, path: Path, field: str = "file"):
        self.boundary = secrets.token_hex(16)
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                     f"filename=\"{path.name}\"\r\nContent-Type: video/mp2t\r\n\r\n").encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file, self.size = open(path, "rb"), path.stat().st_size
        self.parts = [self.head, None, self.tail]

    def __len__(self):
        return len(self.head) + self.size + len(self.tail)

    def read(self, n=-1):
        while self.parts:
            part = self.parts[0]
            if part is None:
                data = self.file.read(n if n and n > 0 else 1024 * 1024)
                if data:
                    return data
                self.parts.pop(0)
                continue
            self.parts.pop(0)
            return part
        return b""


def single_request(base, token, session_id, path: Path):
    import requests

    body = MultipartFile(path)
    response = requests.post(f"{base}/api/v1/procedures/{session_id}/video/", data=body, timeout=3600,
                             headers={"Authorization": f"Token {token}",
                                      "Content-Type": f"multipart/form-data; boundary={body.boundary}"})
    return response.status_code


def tus_upload(base, token, session_id, path: Path, chunk: int):
    from tusclient import client as tus_client

    client = tus_client.TusClient(f"{base}/api/v1/procedures/{session_id}/uploads/",
                                  headers={"Authorization": f"Token {token}"})
    uploader = client.uploader(str(path), chunk_size=chunk, metadata={"filename": path.name}, upload_checksum=True)
    uploader.upload()
    return 204 if uploader.offset == path.stat().st_size else 0


def measure(name, env, work, guard, log):
    proc, base = start_server(env, log)
    try:
        time.sleep(1.0)  # settle after start-up
        sampler = Sampler(proc, guard)
        sampler.start()
        started = time.monotonic()
        try:
            status = work(base)
        except Exception as exc:  # a killed server breaks the connection
            status = f"{type(exc).__name__}: {str(exc)[:120]}"
        elapsed = time.monotonic() - started
        sampler.stop.set()
        sampler.join(5)
        return {"method": name, "status": status, "seconds": round(elapsed, 2), "killed_by_guard": sampler.killed,
                "rss_before_mib": round(sampler.baseline / MIB), "rss_peak_mib": round(sampler.peak / MIB),
                "growth_mib": round((sampler.peak - sampler.baseline) / MIB, 1)}
    finally:
        stop_server(proc)


def main():
    args = parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="medvision-upload-bench-"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{work_dir / 'db.sqlite3'}", "MEDIA_ROOT": str(work_dir / "media"),
           "DJANGO_SETTINGS_MODULE": "medvision.settings", "SECRET_KEY": secrets.token_urlsafe(64), "DEBUG": "true",
           "CELERY_EMBEDDED_WORKER": "false", "VIDEO_SINGLE_REQUEST_MAX_BYTES": str(8 * 1024**3),
           "API_THROTTLE_UPLOAD": "100000/min"}
    env.pop("REDIS_URL", None)
    token, new_session = setup(env)
    source = work_dir / "recording.ts"
    make_recording(source, int(args.gib * 1024**3))
    size = source.stat().st_size
    guard = int(args.guard_gib * 1024**3)
    rows = [
        measure("single request (multipart POST)", env, lambda base: single_request(base, token, new_session(), source),
                guard, work_dir / "single.log"),
        measure(f"tus ({args.chunk_mib} MiB chunks)", env,
                lambda base: tus_upload(base, token, new_session(), source, args.chunk_mib * MIB), guard,
                work_dir / "tus.log"),
    ]
    # What the single request does inside the request and tus leaves to a worker: hash + probe.
    from analysis.media.probe import sha256_file
    from analysis.recordings import probe_upload

    started = time.monotonic()
    sha256_file(source)
    probe_upload(str(source))
    check_s = round(time.monotonic() - started, 2)
    for row in rows:
        row["mib_per_s"] = round(size / MIB / row["seconds"], 1) if row["seconds"] else None
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "file_bytes": size, "check_s": check_s,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "rows": rows}
    print(f"\nRecording: {size / MIB:.0f} MiB MPEG-2 TS; {result['machine']}\n")
    print("| method | answer | time (s) | MiB/s | server RSS before (MiB) | peak (MiB) | growth (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        answer = "killed at the guard" if r["killed_by_guard"] else r["status"]
        print(f"| {r['method']} | {answer} | {r['seconds']} | {r['mib_per_s']} | {r['rss_before_mib']} | "
              f"{r['rss_peak_mib']} | {r['growth_mib']} |")
    print(f"\nThe check (sha256 + probe) alone takes {check_s} s: inside the single request's time; for tus it runs "
          "in a worker after the last chunk (not in the tus time).")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"upload_{time.strftime('%Y%m%d', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\n{out}")
    subprocess.run(["rm", "-rf", str(work_dir)])


if __name__ == "__main__":
    main()
