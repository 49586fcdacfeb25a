"""Delete resumable uploads that were left unfinished past their expiry, with their bytes.

Creating an upload sweeps expired ones too; run this from cron (or a Celery beat job)
where uploads are rare, so abandoned multi-GB files do not wait for the next one.

    python manage.py uploads_expire
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from analysis.uploads import uploads_expire


class Command(BaseCommand):
    help = "Delete unfinished resumable uploads past their expiry (TUS_UPLOAD_EXPIRY_HOURS) and their files."

    def handle(self, *args, **options):
        removed = uploads_expire()
        self.stdout.write(f"Removed {removed} expired upload(s).")
