"""Load and warm up the analyzer when a GPU worker starts, not when its first frame arrives.

Warm-up loads the weights, compiles (or loads from disk) every answer grammar, fills the
prefix cache and captures the CUDA graphs; on an H100/H200 that is tens of seconds that
would otherwise land on the first live frame of the day. It runs in a thread of the
process that will run the tasks (a prefork child, the solo worker, or the embedded
worker's web process: never a prefork parent, which must stay free of CUDA), and the
first task simply waits for it (the analyzer registry's lock).

Only workers that consume the ``gpu`` queue warm up; ``ANALYZER_WARM_UP=false`` turns it off.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

_warm_up_here = False  # set in the worker's main process; inherited by forked children


def _consumes_gpu(worker) -> bool:
    queues = worker.app.amqp.queues
    names = set(getattr(queues, "consume_from", None) or {}) or set(queues)
    return "gpu" in names


def _pool_forks(worker) -> bool:
    """Prefork and solo pools send ``worker_process_init`` in the process that runs tasks."""
    pool = worker.pool_cls
    name = pool if isinstance(pool, str) else f"{getattr(pool, '__module__', '')}.{getattr(pool, '__name__', '')}"
    return any(kind in name for kind in ("prefork", "solo"))


def on_worker_init(sender=None, **kwargs) -> None:
    global _warm_up_here
    from django.conf import settings

    if sender is None or not settings.ANALYZER_WARM_UP or not _consumes_gpu(sender):
        return
    if _pool_forks(sender):
        _warm_up_here = True  # the children (or the solo process) start it in worker_process_init
    else:
        start_warm_up()


def on_worker_ready(sender=None, **kwargs) -> None:
    """A GPU worker that starts queues the scheduling loop once: frames left waiting (or
    claimed by a worker that died) are picked up now, not when the next frame arrives or
    the broker redelivers the dead worker's message (its visibility timeout, an hour)."""
    if sender is None or not _consumes_gpu(sender):
        return
    from .task_names import SCHEDULE

    try:
        sender.app.tasks[SCHEDULE].delay()
    except Exception:  # noqa: BLE001 - the next frame queues the loop anyway
        logger.exception("Could not queue the GPU scheduling loop at worker start.")


def on_worker_process_init(**kwargs) -> None:
    if _warm_up_here:
        start_warm_up()


def start_warm_up() -> threading.Thread:
    thread = threading.Thread(target=_warm_up, name="analyzer-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    from .analyzer import configured_analyzer

    try:
        configured_analyzer()  # the registry warms the analyzer up as it creates it
    except Exception:  # noqa: BLE001 - the first task retries and reports; the worker keeps running
        logger.exception("Analyzer warm-up at worker start failed; the first task will try again.")
