"""Report (and with --delete, remove) media files that no database row refers to.

Every file the application keeps under MEDIA_ROOT belongs to a row: a recording
(``Video.file``, its playable copy ``Video.playback_file``), a frame's JPEG (``Frame.image``)
or an unfinished resumable upload (``uploads/<id>.part``). A file without its row is left over
from a crash between writing it and committing the row, or from a row removed outside the
application. Dry run by default: it lists what it would remove and how much space that is.
Files younger than ``--min-age-minutes`` are never touched (an upload in progress writes its
file just before its row commits).

    python manage.py media_orphans                  # report
    python manage.py media_orphans --delete         # remove them (and empty folders)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from analysis.models import Frame, ResumableUpload, UploadState, upload_part_path
from procedures.models import Video

# The folders the application writes; anything else under MEDIA_ROOT is not ours to judge.
OWNED_FOLDERS = ("videos", "frames", "uploads")


def referenced_files() -> set[str]:
    names = set(Video.objects.exclude(file="").values_list("file", flat=True))
    names |= set(Video.objects.exclude(playback_file="").values_list("playback_file", flat=True))
    names |= {upload_part_path(pk) for pk in ResumableUpload.objects.filter(
        state__in=[UploadState.RECEIVING, UploadState.CHECKING]).values_list("pk", flat=True)}
    names |= set(Frame.objects.exclude(image="").exclude(image__isnull=True).values_list("image", flat=True))
    return {os.path.normpath(name) for name in names}


def find_orphans(root: Path, *, min_age_s: float, now: float | None = None) -> list[tuple[Path, int]]:
    now = time.time() if now is None else now
    referenced = referenced_files()
    orphans = []
    for folder in OWNED_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            stat = path.stat()
            if now - stat.st_mtime < min_age_s:
                continue
            if os.path.normpath(str(path.relative_to(root))) not in referenced:
                orphans.append((path, stat.st_size))
    return orphans


class Command(BaseCommand):
    help = "Report (or --delete) media files under MEDIA_ROOT that no recording or frame refers to."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="Remove the files (default: only report them).")
        parser.add_argument("--min-age-minutes", type=float, default=60.0,
                            help="Leave files younger than this alone (default 60).")

    def handle(self, *args, delete: bool, min_age_minutes: float, **options):
        root = Path(settings.MEDIA_ROOT)
        orphans = find_orphans(root, min_age_s=min_age_minutes * 60)
        total = sum(size for _, size in orphans)
        for path, size in orphans:
            self.stdout.write(f"{'removed' if delete else 'orphan'}  {size:>12}  {path.relative_to(root)}")
            if delete:
                path.unlink(missing_ok=True)
        if delete:
            for folder in OWNED_FOLDERS:  # empty session folders left behind
                for directory in sorted((root / folder).glob("*/"), reverse=True) if (root / folder).is_dir() else []:
                    if directory.is_dir() and not any(directory.iterdir()):
                        directory.rmdir()
        verb = "Removed" if delete else "Found"
        hint = "" if delete or not orphans else " Run again with --delete to remove them."
        self.stdout.write(f"{verb} {len(orphans)} orphaned file(s), {total / 1024**2:.1f} MiB.{hint}")
