"""Several recordings in a real browser: clicking a finding's time plays *that finding's*
recording from that moment (and pauses the other); "Add another recording" reveals the
upload panel. Headless Chromium via Playwright against daphne, as test_browser_live.py.

``two_recordings`` and ``session_page`` are meant for reuse (e.g. an upload test that adds
a third recording through the panel)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from analysis.tests.factories import FindingFactory
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory
from testing import videos as tv

from .test_browser_live import browser_user, log_in, page, running_app  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@dataclass
class TwoRecordings:
    session: object
    videos: list  # Recording 1, Recording 2
    findings: list  # one finding in each, at different times


@pytest.fixture
def two_recordings(browser_user, media_root, tmp_path):  # noqa: F811 - a fixture imported for reuse
    """A recorded session of ``browser_user`` with two playable recordings (4 s each) and a
    finding in each: 1.5 s into Recording 1, 2.5 s into Recording 2."""
    session = ProcedureSessionFactory(clinician=browser_user, status="review")
    folder = media_root / "videos" / str(session.pk)
    folder.mkdir(parents=True, exist_ok=True)
    videos, findings = [], []
    for number, at_ms in ((1, 1500), (2, 2500)):
        path = tv.make_test_video(folder / f"r{number}.mp4", seconds=4, size=(160, 120), pattern="testsrc",
                                  faststart=True)
        video = Video.objects.create(
            session=session, number=number, file=os.path.relpath(path, media_root), sha256=f"{number}" * 64,
            container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", duration_s=4.0, fps=25, width=160, height=120,
            size_bytes=path.stat().st_size, state="done",
        )
        videos.append(video)
        findings.append(FindingFactory(session=session, video=video, start_ms=at_ms, end_ms=at_ms,
                                       label=f"Finding of recording {number}"))
    return TwoRecordings(session, videos, findings)


def session_page(page, base, session):  # noqa: F811 (page is the fixture's object)
    log_in(page, base)
    page.goto(f"{base}/procedures/{session.pk}/")
    page.wait_for_selector("#recordings")


def playing_at(page, number: int, seconds: float) -> None:  # noqa: F811 - a fixture imported for reuse
    """Wait until Recording ``number`` plays from about ``seconds`` (at most 1.5 s later)."""
    page.wait_for_function(
        """([id, at]) => { const v = document.getElementById(id);
             return v && !v.paused && v.currentTime >= at - 0.05 && v.currentTime < at + 1.5; }""",
        arg=[f"recording-{number}-video", seconds], timeout=15_000,
    )


def is_paused(page, number: int) -> bool:  # noqa: F811 - a fixture imported for reuse
    return page.evaluate("(id) => document.getElementById(id).paused", f"recording-{number}-video")


def test_a_findings_time_plays_its_own_recording(page, two_recordings, tmp_path):  # noqa: F811
    first, second = two_recordings.findings
    with running_app(tmp_path) as base:
        session_page(page, base, two_recordings.session)
        assert page.locator("video.recording-player").count() == 2

        page.click(f"#finding-{second.pk} a.seek")
        playing_at(page, 2, 2.5)
        assert is_paused(page, 1)

        page.click(f"#finding-{first.pk} a.seek")
        playing_at(page, 1, 1.5)
        assert is_paused(page, 2)  # the other recording stopped: one plays at a time
        # "Add a finding" now refers to the recording being watched.
        page.evaluate("() => document.getElementById('recording-1-video').pause()")
        href = page.get_attribute("#add-finding", "href")
        assert f"video={two_recordings.videos[0].pk}" in href


def test_add_another_recording_reveals_the_upload_panel(page, two_recordings, tmp_path):  # noqa: F811
    with running_app(tmp_path) as base:
        session_page(page, base, two_recordings.session)
        assert not page.is_visible("#upload-panel")
        page.click("#add-recording")
        assert page.is_visible("#upload-panel") and page.is_visible("#upload-file")
        assert not page.is_visible("#add-recording")
