"""Sending work to the task queues, by task name.

Services and the pipeline queue work here rather than importing ``analysis.tasks``: the
tasks call the services, so importing them back would make a circle. A task is looked up
in our Celery app's registry by its name, which is the same task object that
``analysis.tasks`` defines (so eager mode and tests that patch ``analysis.tasks.X.delay``
behave as before). The app is named, not ``celery.current_app``: that one is per thread,
and in a server thread it can be a bare default app that knows none of our tasks.
"""

from __future__ import annotations

from django.db import transaction

from medvision.celery import app

from .task_names import (  # noqa: F401 - the names callers pass to send()
    ANALYZE_FRAMES,
    ANALYZE_LIVE,
    FINISH_UPLOAD,
    MAKE_PLAYBACK_COPY,
    PROCESS_VIDEO,
    SCHEDULE,
    SUMMARISE_VIDEO,
)


def send(task_name: str, *args) -> None:
    app.tasks[task_name].delay(*args)


def send_after_commit(task_name: str, *args) -> None:
    """Queue the task once the surrounding transaction has committed (at once outside
    one), so a worker never looks for rows that are not visible yet."""
    transaction.on_commit(lambda: send(task_name, *args))
