"""A clinician in a real browser against a real server: log in, create a session, stream a
generated recording from the live page, see demo findings arrive, confirm one, sign, and
find editing refused afterwards. Headless Chromium (Debian's package) driven by
Playwright; daphne on 127.0.0.1; the real worker and the demo model."""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest
from django.conf import settings

from procedures.models import ProcedureSession
from procedures.tests.factories import PASSWORD, UserFactory
from testing import servers as testing
from testing import videos as tv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-fake-ui-for-media-stream"]
WAIT_MS = 120_000


def chromium_or_fail():
    if shutil.which(CHROMIUM) is None:
        message = f"Chromium not found at {CHROMIUM}: install Debian's 'chromium' package (scripts/test.sh does)."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def running_app(tmp_path):
    with contextlib.ExitStack() as stack:
        if not settings.EMBEDDED:
            stack.enter_context(testing.celery_worker(tmp_path))
        yield stack.enter_context(testing.daphne(tmp_path))


@pytest.fixture
def browser_user(settings):
    # The server process checks passwords with the production hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return UserFactory(username="dr.browser", role="clinician")


@pytest.fixture
def page(monkeypatch):
    chromium_or_fail()
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain sync code, so tell Django not to refuse them (Playwright's documented way).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def log_in(page, base):
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", "dr.browser")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/procedures/")


def test_stream_review_sign_in_a_browser(page, browser_user, demo_model_dir, media_root, tmp_path, settings):
    settings.DEMO_MODEL_DIR = demo_model_dir
    video = tv.make_test_video(tmp_path / "procedure.mp4", seconds=4, size=(320, 240), pattern="testsrc")
    with running_app(tmp_path) as base:
        log_in(page, base)
        page.click("text=New session")
        page.fill("#id_title", "Browser colonoscopy")
        page.select_option("#id_procedure_type", "colonoscopy")
        page.click("text=Create session")
        page.wait_for_selector("text=Browser colonoscopy")
        session = ProcedureSession.objects.get(title="Browser colonoscopy")
        assert "Not for clinical use." in page.text_content("#not-for-clinical-use")

        page.goto(f"{base}/procedures/{session.pk}/live/")
        page.wait_for_selector("#live-status:has-text('Connected')")
        page.set_input_files("#video-file", str(video))
        page.fill("#interval-s", "0.5")
        page.click("#start-stream")
        page.wait_for_selector(".timeline-item", timeout=WAIT_MS)
        item = page.locator(".timeline-item").first
        assert "DEMO" in item.text_content()
        item.locator("button[data-action=confirm]").click()
        page.wait_for_selector(".timeline-item.review-confirmed", timeout=10_000)
        # The 4 s recording may end on its own at any moment: click Stop only if it is still
        # enabled, in one step in the page (a check, then a click, would race the end).
        page.evaluate("() => { const b = document.getElementById('stop-stream'); if (!b.disabled) b.click(); }")

        # Review the rest on the session page and sign, as a clinician would: once the page
        # no longer says that live frames are still being analysed (their proposals could
        # otherwise arrive between the last rejection and the signature).
        page.goto(f"{base}/procedures/{session.pk}/")
        for _ in range(60):
            if page.locator("#live-in-flight").count() == 0:
                break
            page.wait_for_timeout(1000)
            page.reload()
        assert page.locator("#live-in-flight").count() == 0, "live analysis did not finish within 60 s"
        from reporting.tests.factories import complete_report

        complete_report(session, actor=session.clinician)  # signing needs a complete structured report
        page.reload()
        # Decisions are made in place (no reload): wait for each row to change.
        while page.locator(".finding-row.review-proposed button.reject").count():
            row = page.locator(".finding-row.review-proposed").first
            row_id = row.get_attribute("id")
            row.locator("button.reject").click()
            page.wait_for_selector(f"#{row_id}.review-rejected")
        assert page.locator(".finding-row.review-confirmed").count() >= 1
        page.wait_for_function("() => !document.getElementById('sign-button').disabled")
        # Signing needs a complete structured report (reporting.validation); filling it in
        # is that page's own test.
        from reporting.tests.factories import complete_report

        complete_report(session, actor=browser_user)
        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#sign-button")
        page.wait_for_selector("text=Report signed")
        session.refresh_from_db()
        assert session.status == "signed"
        assert session.findings.filter(review_status="confirmed").exists()

        # Editing is refused after signing: no buttons, and a direct request is refused.
        assert page.locator("button.confirm").count() == 0
        assert "can no longer be changed" in page.text_content("#read-only-reason")
        finding = session.findings.first()
        response = page.goto(f"{base}/procedures/{session.pk}/findings/{finding.pk}/edit/")
        assert response.status == 403
        page.goto(f"{base}/procedures/{session.pk}/live/")
        assert page.locator("#start-stream").count() == 0


def test_markup_in_findings_is_inert_in_the_live_timeline(page, browser_user, media_root, tmp_path):
    from analysis.tests.factories import FindingFactory
    from procedures.tests.factories import ProcedureSessionFactory

    session = ProcedureSessionFactory(clinician=browser_user, mode="live")
    payload = '<img src=x onerror="window.__xss=1">'
    FindingFactory(session=session, label=payload, description="<script>window.__xss=2</script>")
    with running_app(tmp_path) as base:
        log_in(page, base)
        for path in (f"/procedures/{session.pk}/live/", f"/procedures/{session.pk}/"):
            page.goto(base + path)
            if path.endswith("/live/"):
                page.wait_for_selector(".timeline-item")
                assert payload in page.text_content(".timeline-item")  # shown as text
            assert page.evaluate("window.__xss") is None
            assert page.locator("img[src=x]").count() == 0
