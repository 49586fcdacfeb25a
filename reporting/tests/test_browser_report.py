"""The structured report in a real browser: set the timeline marks on a recording with the
panel's buttons and keys and see the withdrawal time, fill a colonoscopy report (a row
prefilled from a confirmed finding, one added in place), see signing refused with the
missing fields named, complete the report and sign. Headless Chromium via Playwright
against daphne, with the fixtures of portal/tests/test_browser_live.py."""

from __future__ import annotations

import os

import pytest

from analysis.tests.factories import FindingFactory
from portal.tests.test_browser_live import browser_user, log_in, page, running_app  # noqa: F401 (fixtures)
from procedures.models import Video
from procedures.tests.factories import ProcedureSessionFactory
from reporting.models import StructuredReport, TimelineMark
from testing import videos as tv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def recorded_colonoscopy(browser_user, media_root):  # noqa: F811 - a fixture imported for reuse
    session = ProcedureSessionFactory(clinician=browser_user, status="review", title="Browser report colonoscopy")
    folder = media_root / "videos" / str(session.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = tv.make_test_video(folder / "r1.mp4", seconds=8, size=(160, 120), pattern="testsrc", faststart=True)
    video = Video.objects.create(
        session=session, number=1, file=os.path.relpath(path, media_root), sha256="1" * 64,
        container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", duration_s=8.0, fps=25, width=160, height=120,
        size_bytes=path.stat().st_size, state="done",
    )
    finding = FindingFactory(session=session, video=video, start_ms=1500, end_ms=1500, category="polyp",
                             location="sigmoid_colon", size_mm=6, review_status="confirmed", label="Sessile polyp")
    return session, video, finding


def seek(page, seconds: float) -> None:  # noqa: F811 (page is the fixture's object)
    page.evaluate("""(s) => new Promise((done) => { const v = document.getElementById('recording-1-video');
        const go = () => { v.addEventListener('seeked', () => done(), { once: true }); v.currentTime = s; };
        if (v.readyState >= 1) go(); else v.addEventListener('loadedmetadata', go, { once: true }); })""", seconds)


def mark_time(page, kind: str) -> str:  # noqa: F811
    return page.text_content(f'.marks-panel .mark-item[data-kind="{kind}"] [data-role=time]').strip()


def test_marks_report_refused_sign_then_signed(page, recorded_colonoscopy, tmp_path):  # noqa: F811
    session, video, finding = recorded_colonoscopy
    page.on("dialog", lambda dialog: dialog.accept())  # "Sign this report?"
    with running_app(tmp_path) as base:
        log_in(page, base)
        page.goto(f"{base}/procedures/{session.pk}/")
        page.wait_for_selector(".marks-panel")

        # Marks with the buttons (and one with its key) at the video's current time.
        seek(page, 1.2)
        page.click('.marks-panel button.mark-set[data-kind="cecum_reached"]')
        page.wait_for_function("() => document.querySelector('.mark-item[data-kind=cecum_reached] a.mark-seek')")
        assert mark_time(page, "cecum_reached") == "0:01"
        seek(page, 2.0)
        page.click('.marks-panel button.mark-set[data-kind="appendiceal_orifice"]')
        page.wait_for_function("() => document.querySelector('.mark-item[data-kind=appendiceal_orifice] a.mark-seek')")
        seek(page, 2.5)
        page.locator("h1").click()  # focus off any control: the keys do not fire while typing
        page.keyboard.press("Shift+I")
        page.wait_for_function("() => document.querySelector('.mark-item[data-kind=ileocecal_valve] a.mark-seek')")
        seek(page, 6.0)
        page.click('.marks-panel button.mark-set[data-kind="scope_out"]')
        page.wait_for_function("() => document.querySelector('.marks-withdrawal strong')")
        assert page.text_content(".marks-withdrawal strong") == "0:05"  # 1.2 s -> 6.0 s, m:ss

        # Moving a mark: to the current time; the withdrawal time follows.
        seek(page, 7.3)
        page.click('.mark-item[data-kind="scope_out"] button.mark-move')
        page.wait_for_function("() => document.querySelector('.marks-withdrawal strong').textContent === '0:06'")
        marks = {m.kind: m for m in TimelineMark.objects.filter(session=session)}
        assert set(marks) == {"cecum_reached", "appendiceal_orifice", "ileocecal_valve", "scope_out"}
        assert marks["scope_out"].video_id == video.pk and 7200 <= marks["scope_out"].time_ms <= 7400
        assert marks["appendiceal_orifice"].frame_id is not None  # the landmark's key frame

        # The report form: prefill from the confirmed finding, add a row in place, fill in.
        page.goto(f"{base}/procedures/{session.pk}/report/edit/")
        assert page.text_content("#withdrawal-time strong").strip() == "0:06"
        page.click("#prefill-button")
        page.wait_for_selector("text=Added 1 row from confirmed findings")
        assert page.input_value('[name="polyps.0.location"]') == "sigmoid_colon"
        assert page.input_value('[name="polyps.0.size_mm"]') == "6"
        page.click("button[data-add-row=polyps]")
        assert page.locator("#rows-polyps > .report-row").count() == 2
        row = page.locator("#rows-polyps > .report-row").nth(1)
        assert row.locator(".row-title").text_content() == "Polyp 2"
        row.locator("input[name$='.size_mm']").fill("4")
        row.locator("select[name$='.location']").select_option("rectum")
        row.locator("select[name$='.nice']").select_option("1")

        page.check('input[name=indication_kind][value=screening]')
        page.select_option("[name=sedation_level]", "moderate")
        page.check('input[name=extent][value=cecum]')
        page.select_option("[name=bbps_right]", "2")
        page.select_option("[name=bbps_transverse]", "3")
        assert page.text_content("#bbps-total-value") == "–"  # not all segments scored yet
        page.select_option("[name=bbps_left]", "3")
        assert page.text_content("#bbps-total-value") == "8"  # computed in place
        page.check('input[name=complications][value=none]')
        page.fill("[name=impression]", "Two small polyps removed.")
        page.click("#save-report")
        page.wait_for_selector("text=Report saved.")
        data = StructuredReport.objects.get(session=session).data
        assert [p["size_mm"] for p in data["polyps"]] == [6, 4] and data["bbps_left"] == 3
        assert page.locator("#missing-for-sign").count() == 1
        assert "ASA class" in page.text_content("#missing-for-sign")

        # Signing is refused while fields are missing, and the message names them.
        page.goto(f"{base}/procedures/{session.pk}/")
        page.click("#sign-button")
        page.wait_for_selector("text=Structured report: fill in")
        message = page.text_content(".messages")
        assert "ASA class" in message and "Surveillance interval" in message
        session.refresh_from_db()
        assert session.status != "signed"

        # Complete it: ASA class, then confirm the suggested interval; now it signs.
        page.goto(f"{base}/procedures/{session.pk}/report/edit/")
        page.select_option("[name=asa_class]", "II")
        page.click("#save-report")
        page.wait_for_selector("text=Report saved.")
        assert "tubular adenomas" in page.text_content("#surveillance-rule")
        page.click("#surveillance-confirm")
        page.wait_for_selector("#surveillance-chosen")
        assert page.locator("#missing-for-sign").count() == 0
        page.goto(f"{base}/procedures/{session.pk}/")
        page.click("#sign-button")
        page.wait_for_selector("text=Report signed")
        session.refresh_from_db()
        assert session.status == "signed"

        # Signed: the form is read-only, and the marks panel offers no buttons.
        page.goto(f"{base}/procedures/{session.pk}/report/edit/")
        assert page.locator("#save-report").count() == 0
        assert page.locator("fieldset.report-body[disabled]").count() == 1
        page.goto(f"{base}/procedures/{session.pk}/")
        assert page.locator(".marks-panel button.mark-set").count() == 0


def test_marks_on_the_live_page_use_the_live_media_time(page, browser_user, media_root, tmp_path):  # noqa: F811
    session = ProcedureSessionFactory(clinician=browser_user, mode="live", title="Live marks colonoscopy")
    video = tv.make_test_video(tmp_path / "live.mp4", seconds=4, size=(160, 120), pattern="testsrc", faststart=True)
    with running_app(tmp_path) as base:
        log_in(page, base)
        page.goto(f"{base}/procedures/{session.pk}/live/")
        page.wait_for_selector(".marks-panel")
        page.click('.marks-panel button.mark-set[data-kind="cecum_reached"]')  # nothing loaded yet: refused
        page.wait_for_selector(".marks-panel [data-role=status].error")
        assert not TimelineMark.objects.filter(session=session).exists()

        page.set_input_files("#video-file", str(video))
        page.evaluate("""() => new Promise((done) => { const v = document.getElementById('live-video');
            const go = () => { v.addEventListener('seeked', () => done(), { once: true }); v.currentTime = 2.2; };
            if (v.readyState >= 1) go(); else v.addEventListener('loadedmetadata', go, { once: true }); })""")
        page.locator("h1").click()
        page.keyboard.press("Shift+C")
        page.wait_for_function("() => document.querySelector('.mark-item[data-kind=cecum_reached] a.mark-seek')")
        assert mark_time(page, "cecum_reached") == "0:02"
        mark = TimelineMark.objects.get(session=session, kind="cecum_reached")
        assert mark.video_id is None and 2100 <= mark.time_ms <= 2300  # the live stream's clock
