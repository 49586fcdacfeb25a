"""The review workspace in a real browser at 1366x768, 768 px and 390 px wide: decisions on
screen, the video in view while the list scrolls, decisions in place (the video keeps
playing), no scroll jump on load, a disabled Sign that looks disabled, readable labels,
plot marks that do not hide each other, styled error pages, and nothing wider than a phone.
Headless Chromium via Playwright against daphne, as test_browser_live.py."""

from __future__ import annotations

import os
import re

import pytest

from analysis.tests.factories import FindingFactory
from procedures.models import Video
from procedures.tests.factories import PASSWORD, ProcedureSessionFactory, UserFactory
from testing import servers as testing
from testing import videos as tv

from .test_browser_live import browser_user, log_in, page, running_app  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LONG = "Unbroken" + "x" * 400  # model text with no place to break: what widened the table
CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")


@pytest.fixture
def workspace(browser_user, media_root):  # noqa: F811 - a fixture imported for reuse
    """A recorded session of ``browser_user``: one playable 20 s recording and 12 findings
    (long unbroken text; three at nearly the same moment and risk), none decided yet."""
    session = ProcedureSessionFactory(clinician=browser_user, status="review", title="Workspace colonoscopy")
    folder = media_root / "videos" / str(session.pk)
    folder.mkdir(parents=True, exist_ok=True)
    path = tv.make_test_video(folder / "r1.mp4", seconds=20, size=(320, 240), pattern="testsrc", faststart=True)
    video = Video.objects.create(
        session=session, number=1, file=os.path.relpath(path, media_root), sha256="1" * 64,
        container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", duration_s=20.0, fps=25, width=320, height=240,
        size_bytes=path.stat().st_size, state="done",
        summary={"findings": 12, "by_risk": {"high": 3, "medium": 5, "low": 4}, "frames": {"analysed": 40},
                 "processing_s": 12.0, "by_category": {"polyp": 12}},
    )
    findings = [FindingFactory(session=session, video=video, risk="high", start_ms=5000 + i * 50, end_ms=5600,
                               label=f"Cluster {i}", description=LONG) for i in range(3)]
    findings += [FindingFactory(session=session, video=video, start_ms=1000 * (8 + i), end_ms=1000 * (8 + i),
                                risk=("medium", "low")[i % 2], label=f"{LONG[:60]}{i}", description=LONG,
                                suggested_next_step=LONG) for i in range(9)]
    return session, video, findings


def open_page(page, base, url, width=1366, height=768):  # noqa: F811
    page.set_viewport_size({"width": width, "height": height})
    page.goto(base + url)
    page.wait_for_load_state("load")


def scroll_width(page) -> int:  # noqa: F811
    return page.evaluate("() => document.documentElement.scrollWidth")


def test_at_1366_the_decisions_are_on_screen_and_the_video_stays_in_view(page, workspace, tmp_path):  # noqa: F811
    session, _, findings = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        open_page(page, base, f"/procedures/{session.pk}/")
        page.wait_for_timeout(300)  # the page's scripts have run (and would have scrolled)
        assert page.evaluate("() => window.scrollY") == 0  # no jump to the findings on load
        assert scroll_width(page) <= 1366
        first = page.locator(".finding-row").first
        for name in ("confirm", "reject"):
            box = first.locator(f"button.{name}").bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1366, (name, box)
            assert box["y"] + box["height"] <= 768, (name, box)  # on the first screen, no scrolling
        column = page.evaluate("""() => { const c = document.getElementById('workspace-findings');
                                          return [c.scrollWidth, c.clientWidth]; }""")
        assert column[0] <= column[1], column  # long model text wraps inside its column
        media = page.locator("#workspace-media").bounding_box()
        findings_box = page.locator("#workspace-findings").bounding_box()
        assert media["x"] + media["width"] <= findings_box["x"]  # side by side

        page.locator(".finding-row").last.scroll_into_view_if_needed()
        page.wait_for_timeout(200)
        assert page.evaluate("() => window.scrollY") > 300  # the list is longer than the screen
        video = page.locator("#recording-1-video").bounding_box()
        assert video["y"] >= 0 and video["y"] + video["height"] <= 768, video  # still in view


def test_a_decision_is_made_in_place_and_the_video_keeps_playing(page, workspace, tmp_path):  # noqa: F811
    session, _, findings = workspace
    target = findings[0]
    with running_app(tmp_path) as base:
        log_in(page, base)
        open_page(page, base, f"/procedures/{session.pk}/")
        page.evaluate("() => { window.__samePage = true; const v = document.getElementById('recording-1-video');"
                      " v.muted = true; return v.play(); }")
        page.wait_for_function("() => document.getElementById('recording-1-video').currentTime > 0.3", timeout=15_000)
        before = page.evaluate("() => document.getElementById('recording-1-video').currentTime")
        assert page.locator("[data-review-scope=all] [data-count=confirmed]").text_content() == "0"

        page.click(f"#finding-{target.pk} button.confirm")
        page.wait_for_selector("#decision-status:has-text('Confirmed')")
        assert page.locator(f"#finding-{target.pk}.review-confirmed").count() == 1
        page.wait_for_timeout(600)
        state = page.evaluate("""() => { const v = document.getElementById('recording-1-video');
            return {paused: v.paused, t: v.currentTime, same: window.__samePage === true}; }""")
        assert state["same"], "the page was reloaded"
        assert state["paused"] is False and state["t"] > before + 0.3, (before, state)
        assert page.locator("[data-review-scope=all] [data-count=confirmed]").text_content() == "1"
        assert page.locator("[data-review-scope=all] [data-count=proposed]").text_content() == str(len(findings) - 1)
        assert page.get_attribute("#decision-status", "aria-live") == "polite"
        target.refresh_from_db()
        assert target.review_status == "confirmed"

        # The keyboard's "r" goes the same way (in place), on the selected finding.
        page.click(f"#finding-{findings[1].pk} .finding-text")
        page.keyboard.press("r")
        page.wait_for_selector(f"#finding-{findings[1].pk}.review-rejected")
        assert page.evaluate("() => window.__samePage === true")


def test_sign_is_visibly_disabled_until_every_finding_is_decided(page, workspace, tmp_path):  # noqa: F811
    session, _, findings = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        open_page(page, base, f"/procedures/{session.pk}/")
        style = """(id) => { const s = getComputedStyle(document.getElementById(id));
                             return {opacity: Number(s.opacity), cursor: s.cursor, bg: s.backgroundColor}; }"""
        disabled = page.evaluate(style, "sign-button")
        assert page.is_disabled("#sign-button")
        assert disabled["opacity"] < 0.7 and disabled["cursor"] == "not-allowed", disabled
        assert f"{len(findings)} proposed findings still need a decision" in page.text_content("#sign-reason")
        for finding in findings:
            page.click(f"#finding-{finding.pk} button.reject")
            page.wait_for_selector(f"#finding-{finding.pk}.review-rejected")
        page.wait_for_function("() => !document.getElementById('sign-button').disabled")
        enabled = page.evaluate(style, "sign-button")
        assert enabled["opacity"] == 1 and enabled["cursor"] == "pointer" and enabled["bg"] != disabled["bg"]
        assert not page.is_visible("#sign-reason")


def test_the_page_speaks_in_labels_and_clock_times(page, workspace, tmp_path):  # noqa: F811
    session, _, _ = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        for url in (f"/procedures/{session.pk}/", f"/procedures/{session.pk}/findings/new/"):
            open_page(page, base, url)
            text = page.evaluate("() => document.querySelector('main').innerText")
            assert not CODE.findall(text), (url, CODE.findall(text))
            assert not re.search(r"\d ms\b|\(ms\)", text), url
        open_page(page, base, f"/procedures/{session.pk}/")
        assert "Sigmoid colon" in page.inner_text("#findings")
        assert "Time (m:ss)" in page.inner_text("#findings-plot-1")


def test_plot_marks_do_not_hide_each_other(page, workspace, tmp_path):  # noqa: F811
    session, _, _ = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        open_page(page, base, f"/procedures/{session.pk}/")
        boxes = page.evaluate("""() => Array.from(document.querySelectorAll('#findings-plot-1 rect.mark')).map((r) => {
            const b = r.getBoundingClientRect();
            return [b.left, b.top, b.right, b.bottom, r.querySelector('title').textContent]; })""")
        assert len(boxes) == 12
        overlapping = [(a[4], b[4]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                       if a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5]
        assert not overlapping
        assert len({b[4] for b in boxes}) == 12  # a title of its own per mark


def test_at_768_nothing_is_wider_than_the_screen(page, workspace, tmp_path):  # noqa: F811
    session, _, _ = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        open_page(page, base, f"/procedures/{session.pk}/", width=768, height=1024)
        assert scroll_width(page) <= 768
        media = page.locator("#workspace-media").bounding_box()
        findings_box = page.locator("#workspace-findings").bounding_box()
        assert findings_box["y"] >= media["y"] + media["height"] - 1  # stacked: one column


def test_at_390_no_page_is_wider_than_the_phone(page, workspace, tmp_path):  # noqa: F811
    session, _, findings = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        for url in ("/procedures/", f"/procedures/{session.pk}/", f"/procedures/{session.pk}/live/",
                    f"/procedures/{session.pk}/findings/new/",
                    f"/procedures/{session.pk}/findings/{findings[0].pk}/edit/",
                    f"/procedures/{session.pk}/report/", "/procedures/new/"):
            open_page(page, base, url, width=390, height=844)
            width = scroll_width(page)
            assert width <= 390, (url, width)


def test_error_pages_are_styled_and_say_where_to_go(page, workspace, tmp_path):  # noqa: F811
    session, _, _ = workspace
    UserFactory(username="qa.browser", role="qa_reviewer", is_staff=True)
    mine_elsewhere = ProcedureSessionFactory(clinician=UserFactory(username="dr.elsewhere", role="clinician"))
    # The server's own settings (DEBUG on here, as in the embedded profile): a view's 404 and
    # every 403 are the site's pages with DEBUG on as well as off (medvision.api_errors).
    with testing.daphne(tmp_path) as base:
        log_in(page, base)
        response = page.goto(f"{base}/procedures/{mine_elsewhere.pk}/")
        assert response.status == 404
        assert "not yours to see" in page.text_content("#error-reason")
        assert page.evaluate("() => getComputedStyle(document.querySelector('.card')).borderRadius") != "0px"
        page.click("#to-sessions")
        page.wait_for_url("**/procedures/")

        # The API (same cookie) still answers its JSON error, not the page.
        response = page.request.get(f"{base}/api/v1/procedures/{mine_elsewhere.pk}/",
                                    headers={"Accept": "application/json"})
        assert response.status == 404 and response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["code"] == "not_found"

        page.context.clear_cookies()
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "qa.browser")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        response = page.goto(f"{base}/procedures/{session.pk}/findings/new/")
        assert response.status == 403
        assert "Only the clinician who owns this session can change it." in page.text_content("#error-reason")
        page.click("#back-to-session")
        page.wait_for_url(f"**/procedures/{session.pk}/")


def test_add_a_finding_takes_the_players_current_time(page, workspace, tmp_path):  # noqa: F811
    session, video, _ = workspace
    with running_app(tmp_path) as base:
        log_in(page, base)
        open_page(page, base, f"/procedures/{session.pk}/")
        page.evaluate("() => { const v = document.getElementById('recording-1-video');"
                      " v.muted = true; return v.play(); }")
        page.wait_for_function("() => document.getElementById('recording-1-video').currentTime > 1.5", timeout=15_000)
        page.click("#add-finding")  # while it plays: the time at the click, not at the last pause
        page.wait_for_url("**/findings/new/**")
        start = page.input_value("#id_start_ms")
        minutes, seconds = start.split(":")
        assert minutes == "0" and 1.5 <= float(seconds) < 10, start
        assert page.input_value("#id_end_ms") == start
        assert page.input_value("#id_video") == str(video.pk)
        page.select_option("#id_category", "polyp")
        page.select_option("#id_risk", "low")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/procedures/{session.pk}/")
        added = session.findings.get(origin="clinician")
        assert added.video == video and 1500 <= added.start_ms < 10_000 and added.end_ms == added.start_ms
        assert added.frame is not None and added.frame.timestamp_ms == added.start_ms  # its key frame, at that time
