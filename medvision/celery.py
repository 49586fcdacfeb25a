"""The Celery application.

Queues: ``celery`` (CPU work: probing, sampling, summaries) and ``gpu`` (model inference;
its worker runs ``-Q gpu -c 1 --prefetch-multiplier 1`` so one process owns the model).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medvision.settings")

app = Celery("medvision")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
