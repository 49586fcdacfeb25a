"""Helpers for tests that run the real servers (daphne, Celery workers) as processes
against the test database. Loopback only; every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def server_env(**extra) -> dict:
    """The environment of a child process that shares this test's database and files."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATABASE_URL=test_database_url(), DEBUG="true", MEDIA_ROOT=str(settings.MEDIA_ROOT),
               DEMO_MODEL_DIR=str(settings.DEMO_MODEL_DIR), PYTHONUNBUFFERED="1")
    if not settings.EMBEDDED:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


@contextlib.contextmanager
def process(args: list[str], env: dict, log_path: Path, ready=None, timeout_s: float = 120):
    log = open(log_path, "w+")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if ready is not None:
            deadline = time.monotonic() + timeout_s
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{args[:4]} did not start:\n{log.read()[-3000:]}")
                time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def daphne(tmp_path: Path, **env_extra):
    """A real daphne on 127.0.0.1 serving the app (with its embedded worker in the
    embedded profile). Yields the base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # How operators start it (README): daphne with WebSocket limits that fit the app's frames.
    args = [sys.executable, "-m", "medvision.serve", "-b", "127.0.0.1", "-p", str(port)]
    with process(args, server_env(**env_extra), tmp_path / "daphne.log", ready=lambda: _answers(base + "/healthz")):
        yield base


@contextlib.contextmanager
def celery_worker(tmp_path: Path, queues: str = "gpu,celery"):
    """A real ``celery -A medvision worker`` process (services profile: Redis broker)."""
    args = [sys.executable, "-m", "celery", "-A", "medvision", "worker", "-Q", queues, "-c", "1",
            "--prefetch-multiplier", "1", "-n", f"test-{os.getpid()}-{free_port()}@%h", "--without-mingle",
            "--without-gossip", "-l", "INFO"]
    log_path = tmp_path / "worker.log"
    with process(args, server_env(CELERY_EMBEDDED_WORKER="false"), log_path,
                 ready=lambda: "ready." in log_path.read_text(errors="replace")) as proc:
        yield proc


@contextlib.contextmanager
def standin_worker(tmp_path: Path, name: str, *, base_ms: float, per_frame_ms: float, pool: str = "prefork",
                   **env_extra):
    """A ``-Q gpu -c 1`` worker process whose model is testing/standin_worker.py's stand-in
    (services profile). Yields (process, path of its analysed-frame log)."""
    log_ids = tmp_path / f"{name}.analysed"
    log_path = tmp_path / f"{name}.log"
    args = [sys.executable, "testing/standin_worker.py", str(base_ms), str(per_frame_ms), "-Q", "gpu", "-c", "1", "-P", pool,
            "--prefetch-multiplier", "1", "-n", f"{name}-{os.getpid()}-{free_port()}@%h", "--without-mingle",
            "--without-gossip", "-l", "INFO"]
    env = server_env(CELERY_EMBEDDED_WORKER="false", STANDIN_LOG=str(log_ids), **env_extra)
    with process(args, env, log_path, ready=lambda: "ready." in log_path.read_text(errors="replace")) as proc:
        yield proc, log_ids


def session_cookie_for(user) -> bytes:
    """A ``Cookie`` header value logging ``user`` in, for WebSocket tests that need the
    portal's cookie authentication (not a token)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode()


def clear_shared_cache() -> None:
    """Forget throttle and rate-limit counters between tests. On Redis only this project's
    cache keys go (the broker and channel layer share the database)."""
    from django.core.cache import cache

    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        cache.clear()
        return
    import redis

    client = redis.Redis.from_url(config["LOCATION"])
    try:
        keys = list(client.scan_iter(match=f"{config.get('KEY_PREFIX', '')}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


REFUSALS = ("not_authenticated", "read_only", "not_found")


async def refusal_or_first_event(communicator, timeout: float = 5) -> tuple[int | None, dict | None]:
    """For a socket the server accepted: ``(close code, None)`` when it turned the client
    away (it sends one error event, then closes with 4401/4403/4404), else
    ``(None, first event)``."""
    first = await communicator.receive_output(timeout)
    if first["type"] == "websocket.close":
        return first.get("code"), None
    event = json.loads(first.get("text") or "null")
    if isinstance(event, dict) and event.get("type") == "error" and event.get("code") in REFUSALS:
        closed = await communicator.receive_output(timeout)
        assert closed["type"] == "websocket.close", closed
        return closed.get("code"), None
    return None, event
