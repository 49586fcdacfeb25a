"""A Celery worker thread inside the web process, for the embedded profile.

With no Redis, the broker is kombu's in-memory transport, which only works inside one
process; so the worker runs as a thread of the web server. Tasks still run off the request
path (asynchronously), exactly as with a separate worker. One thread pool of three: a slot
for sampling, one for the model, whose weights load once in this process, and one so that a
recording's playable copy (``make_playback_copy``, default queue, minutes of ffmpeg) does not
hold up either of them.
"""

from __future__ import annotations

import logging
import threading

from celery.worker import WorkController

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker: WorkController | None = None


def start_embedded_worker(*, concurrency: int = 3) -> WorkController:
    """Start the worker thread once per process (idempotent) and wait until it consumes."""
    global _worker
    from .celery import app

    with _lock:
        if _worker is not None:
            return _worker
        started = threading.Event()
        worker = WorkController(
            app=app,
            hostname="embedded@medvision",
            pool="threads",
            concurrency=concurrency,
            queues=["celery", "gpu"],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda _consumer: started.set(),
            loglevel=logging.INFO,
        )
        thread = threading.Thread(target=worker.start, name="celery-embedded", daemon=True)
        thread.start()
        if not started.wait(30):
            raise RuntimeError("The embedded Celery worker did not start within 30 s.")
        _worker = worker
        logger.info("Embedded Celery worker started (in-process broker, queues celery+gpu).")
        return worker


def stop_embedded_worker() -> None:
    global _worker
    with _lock:
        if _worker is not None:
            _worker.stop(in_sighandler=False)
            _worker = None
