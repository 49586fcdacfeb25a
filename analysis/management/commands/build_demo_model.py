"""Build the random-weight demo model (offline, seconds) unless it is already there."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Build the tiny random-weight Gemma 3 demo model into DEMO_MODEL_DIR (no download)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Rebuild even if it exists.")

    def handle(self, *args, force=False, **options):
        from analysis.engine import build_demo_model, ensure_demo_model

        path = settings.DEMO_MODEL_DIR
        started = time.monotonic()
        if force:
            build_demo_model(path)
        else:
            ensure_demo_model(path)
        self.stdout.write(
            f"Demo model ready at {path} ({time.monotonic() - started:.1f} s). "
            "It has random weights: its findings are meaningless and always marked DEMO."
        )
