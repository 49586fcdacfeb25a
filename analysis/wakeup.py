"""Waking the GPU loop when a frame is committed, instead of it polling the database.

A lingering loop (analysis.scheduler) waits here between checks. On the services profile
the signal is a Redis list: the web process pushes after its commit and the loop's BLPOP
returns at once (several workers: one wakes, the others see the frame at their next check).
On the embedded profile, where the worker is a thread of the web process, it is a
threading.Event. A lost or late signal costs at most one ``timeout``: the loop still checks
the database after every wait, so correctness never depends on it.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

KEY = "medvision:gpu-scheduler:wake"
_event = threading.Event()
_client = None
_client_lock = threading.Lock()


def _redis():
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import redis

                _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    return _client


def notify() -> None:
    """A frame is waiting (call after its transaction committed)."""
    if settings.EMBEDDED:
        _event.set()
        return
    try:
        pipe = _redis().pipeline()
        pipe.rpush(KEY, 1)
        pipe.ltrim(KEY, -16, -1)  # a few signals are as good as many
        pipe.expire(KEY, 60)
        pipe.execute()
    except Exception:  # noqa: BLE001 - the loop's own check finds the frame within its timeout
        logger.warning("Could not wake the GPU loop through Redis; it will find the frame itself.", exc_info=True)


def wait(timeout_s: float) -> bool:
    """Block until notified or ``timeout_s`` passed; True when notified."""
    if settings.EMBEDDED:
        woken = _event.wait(timeout_s)
        _event.clear()
        return woken
    try:
        client = _redis()
        woken = client.blpop([KEY], timeout=timeout_s) is not None
        if woken:
            client.delete(KEY)  # one wake-up serves every frame that is waiting now
        return woken
    except Exception:  # noqa: BLE001 - fall back to a plain pause
        logger.warning("Could not wait on Redis for the GPU loop's wake-up; polling instead.", exc_info=True)
        threading.Event().wait(timeout_s)
        return False
