"""``manage.py media_orphans``: files without their row are reported (dry run by default) and
removed with --delete; files that belong to a row, young files and foreign folders stay."""

import io
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from analysis import services
from analysis.tests.fakes import jpeg_bytes
from procedures.models import Video

pytestmark = pytest.mark.django_db


def age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def run(*args):
    out = io.StringIO()
    call_command("media_orphans", *args, stdout=out)
    return out.getvalue()


def test_orphans_are_reported_then_removed_and_nothing_else_is_touched(session, media_root):
    frame = services.frame_create(session=session, source="live", timestamp_ms=0, jpeg=jpeg_bytes(), width=64,
                                  height=48)
    video = Video(session=session, sha256="b" * 64)
    video.file.save("x.bin", ContentFile(b"recording"), save=True)
    orphan = media_root / "frames" / str(session.pk) / "left-over.jpg"
    orphan.write_bytes(b"x" * 2048)
    young = media_root / "videos" / str(session.pk) / "uploading.bin"
    young.write_bytes(b"in progress")
    foreign = media_root / "someone-elses" / "file.txt"
    foreign.parent.mkdir()
    foreign.write_text("not ours")
    for path in (orphan, foreign, frame.image.path, video.file.path):
        age(path, 7200)

    report = run()
    assert "left-over.jpg" in report and "Found 1 orphaned file(s)" in report and "--delete" in report
    assert orphan.exists()  # dry run by default

    assert "Removed 1 orphaned file(s)" in run("--delete")
    assert not orphan.exists()
    for kept in (young, foreign, frame.image.path, video.file.path):
        assert os.path.exists(kept)


def test_a_session_folder_left_empty_goes_too(session, media_root):
    folder = media_root / "frames" / "0f0f0f0f-0000-0000-0000-000000000000"
    folder.mkdir(parents=True)
    stray = folder / "stray.jpg"
    stray.write_bytes(b"x")
    age(stray, 7200)
    run("--delete")
    assert not folder.exists()
