"""A clinician uploads two recordings in a real browser: the first resumably (progress,
Pause, a page reload that continues the same upload, the network dropped and back), then a second one through "Add another
recording"; a finding of each recording seeks *its* video. Headless Chromium (Debian's
package) driven by Playwright, a real daphne with its in-process worker and the demo model."""

from __future__ import annotations

import contextlib
import hashlib
import time

import pytest
from django.conf import settings

from analysis.models import Finding, FindingOrigin, ResumableUpload
from procedures.models import ProcedureSession, Video
from testing import servers as testing
from testing import videos as tv
from testing.videos import run_ffmpeg

from .test_browser_live import browser_user, log_in, page  # noqa: F401 - the same browser fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHUNK = 64 * 1024  # small chunks, so that the upload can be paused and cut off half-way


@contextlib.contextmanager
def running_app(tmp_path):
    with contextlib.ExitStack() as stack:
        if not settings.EMBEDDED:
            stack.enter_context(testing.celery_worker(tmp_path))
        yield stack.enter_context(testing.daphne(tmp_path, TUS_BROWSER_CHUNK_BYTES=str(CHUNK)))


def wait_for(predicate, what: str, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def tower_export(path):
    """An MPEG-2 transport stream (what a tower recorder writes; browsers cannot play it)."""
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=12", "-c:v", "mpeg2video", "-q:v", "1", "-g", "1",
                "-f", "mpegts", str(path)])
    return path


def recording_done(session, number):
    video = Video.objects.filter(session=session, number=number).first()
    if video is None or video.state == "failed":
        assert video is None, f"recording {number} failed: {video.error_message}"
        return None
    return video if video.state == "done" and video.playback_state in ("ready", "not_needed") else None


def current_time(page, selector):  # noqa: F811 - a fixture imported for reuse
    return page.eval_on_selector(selector, "v => v.currentTime")


def test_resumable_upload_second_recording_and_seeking_the_right_video(page, browser_user, demo_model_dir,  # noqa: F811
                                                                       media_root, tmp_path, settings):
    settings.DEMO_MODEL_DIR = demo_model_dir
    first_file = tower_export(tmp_path / "tower-export.ts")
    second_file = tv.make_test_video(tmp_path / "second.mp4", seconds=3, size=(320, 240), pattern="testsrc")
    assert first_file.stat().st_size > 20 * CHUNK
    session = ProcedureSession.objects.create(title="Two recordings", procedure_type="colonoscopy", mode="recorded",
                                              clinician=browser_user)
    with running_app(tmp_path) as base:
        log_in(page, base)
        page.goto(f"{base}/procedures/{session.pk}/")
        page.set_input_files("#upload-file", str(first_file))
        page.click("#upload-form button[type=submit]")

        # Progress, then Pause: the server's offset stops moving.
        page.wait_for_function("document.getElementById('upload-progress').value > 5")
        assert "Uploading tower-export.ts" in page.text_content("#upload-message")
        page.click("#upload-pause")
        page.wait_for_selector("#upload-resume:not([hidden])")
        assert "Paused at" in page.text_content("#upload-message")
        upload = ResumableUpload.objects.get(session=session)
        time.sleep(1.0)
        paused_at = ResumableUpload.objects.get(pk=upload.pk).offset
        time.sleep(1.0)
        assert ResumableUpload.objects.get(pk=upload.pk).offset == paused_at < upload.length

        # Resume continues; pause again.
        page.click("#upload-resume")
        wait_for(lambda: ResumableUpload.objects.get(pk=upload.pk).offset > paused_at, "Resume to continue", 30)
        page.click("#upload-pause")
        page.wait_for_selector("#upload-resume:not([hidden])")
        time.sleep(0.5)
        paused_at = ResumableUpload.objects.get(pk=upload.pk).offset
        assert paused_at < upload.length

        # The page is reloaded (closed, crashed): choosing the same file continues the same
        # upload from the server's offset, not from zero.
        page.goto(f"{base}/procedures/{session.pk}/")
        page.wait_for_function("document.getElementById('upload-message').textContent.includes('unfinished upload')")
        page.set_input_files("#upload-file", str(first_file))
        page.click("#upload-form button[type=submit]")
        wait_for(lambda: ResumableUpload.objects.get(pk=upload.pk).offset > paused_at, "the upload to resume", 30)
        assert ResumableUpload.objects.filter(session=session).count() == 1

        # Then the network drops and comes back: the upload carries on by itself.
        page.context.set_offline(True)
        time.sleep(1.5)
        page.context.set_offline(False)
        wait_for(lambda: recording_done(session, 1), "recording 1 to be analysed (and its playable copy made)")
        first = Video.objects.get(session=session, number=1)
        assert first.sha256 == hashlib.sha256(first_file.read_bytes()).hexdigest()  # every byte, once
        assert first.playback_state == "ready"  # MPEG-2: the page plays its H.264 copy

        # A second recording is an explicit action.
        page.goto(f"{base}/procedures/{session.pk}/")
        assert page.is_hidden("#upload-panel")
        page.click("#add-recording")
        page.set_input_files("#upload-file", str(second_file))
        page.click("#upload-form button[type=submit]")
        wait_for(lambda: recording_done(session, 2), "recording 2 to be analysed")
        second = Video.objects.get(session=session, number=2)

        # One finding in each recording, at different times.
        for video, ms in ((first, 1500), (second, 700)):
            Finding.objects.create(session=session, video=video, origin=FindingOrigin.CLINICIAN, start_ms=ms,
                                   end_ms=ms, category="polyp", location="sigmoid_colon", risk="medium",
                                   review_status="confirmed", reviewed_by=browser_user)
        page.goto(f"{base}/procedures/{session.pk}/")
        page.wait_for_selector("#recording-1-video")
        page.wait_for_selector("#recording-2-video")

        page.click(f"#findings .seek[data-video='{second.pk}']")
        page.wait_for_function("Math.abs(document.getElementById('recording-2-video').currentTime - 0.7) < 0.15")
        assert current_time(page, "#recording-1-video") == 0
        page.click(f"#findings .seek[data-video='{first.pk}']")
        page.wait_for_function("Math.abs(document.getElementById('recording-1-video').currentTime - 1.5) < 0.15")
        assert page.eval_on_selector("#recording-2-video", "v => v.paused")
    assert Video.objects.filter(session=session).count() == 2
