"""The Celery application.

Queues: ``celery`` (CPU work: probing, sampling, summaries) and ``gpu`` (model inference;
its worker runs ``-Q gpu -c 1 --prefetch-multiplier 1`` so one process owns the model).
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")

app = Celery("medvision")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A GPU worker loads and warms up its model as it starts (analysis.worker_start).
@signals.worker_init.connect
def _warm_up_on_worker_init(sender=None, **kwargs):
    from analysis.worker_start import on_worker_init

    on_worker_init(sender=sender, **kwargs)


@signals.worker_ready.connect
def _resume_waiting_work_on_worker_ready(sender=None, **kwargs):
    from analysis.worker_start import on_worker_ready

    on_worker_ready(sender=sender, **kwargs)


@signals.worker_process_init.connect
def _warm_up_on_worker_process_init(**kwargs):
    from analysis.worker_start import on_worker_process_init

    on_worker_process_init(**kwargs)
