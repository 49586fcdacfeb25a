"""The QA quality page in a real browser: a QA reviewer follows the navigation link, every
metric's chart is drawn by the vendored Chart.js, nothing is fetched from outside loopback,
the console stays clean, and without JavaScript the tables still carry the numbers.
Headless Chromium (Debian's package) driven by Playwright against daphne on 127.0.0.1, as
portal/tests/test_browser_live.py."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from portal.tests.test_browser_live import CHROMIUM, FLAGS, chromium_or_fail, running_app
from procedures.tests.factories import PASSWORD, UserFactory
from reporting import quality

from .quality_data import colonoscopy_data, polyp, signed_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUERY = "?date_from=2025-01-01&date_to=2025-03-31&grouping=month"


@pytest.fixture
def qa_browser_user(settings):
    # The server process checks passwords with the production hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    return UserFactory(username="qa.browser", role="qa_reviewer", is_staff=True)


@pytest.fixture
def quality_data(db):
    a = UserFactory(username="dr.alpha", role="clinician")
    b = UserFactory(username="dr.beta", role="clinician")
    signed_session(a, day="2025-01-14", withdrawal_s=410, data=colonoscopy_data(polyps=[polyp()]))
    signed_session(a, day="2025-03-03", withdrawal_s=330, data=colonoscopy_data(extent="incomplete"))
    signed_session(b, day="2025-02-11", withdrawal_s=500, data=colonoscopy_data(bbps=(1, 2, 3)))
    signed_session(b, day="2025-02-12", procedure_type="bronchoscopy")


@pytest.fixture
def browser(monkeypatch):
    chromium_or_fail()
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # plain sync code (Playwright's documented way to let Django allow them).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def log_in(page, base):
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", "qa.browser")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/procedures/")


def test_the_quality_page_draws_a_chart_per_metric_from_our_own_server(browser, qa_browser_user, quality_data,
                                                                       tmp_path):
    with running_app(tmp_path) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(30_000)
        requests, problems = [], []
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: problems.append(f"{message.text} {message.location.get('url')}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
                if response.status >= 400 else None)

        log_in(page, base)
        page.click("nav >> text=Quality")
        page.wait_for_url("**/qa/quality/")
        page.goto(base + "/qa/quality/" + QUERY)
        page.wait_for_function("() => window.Chart && document.querySelectorAll('canvas[data-metric]').length"
                               " && [...document.querySelectorAll('canvas[data-metric]')]"
                               ".every(c => Chart.getChart(c))")
        charts = page.evaluate("""() => [...document.querySelectorAll('canvas[data-metric]')].map(canvas => {
            const chart = Chart.getChart(canvas);
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) painted++; }
            return {id: canvas.dataset.metric, type: chart.config.type, labels: chart.data.labels,
                    series: chart.data.datasets.map(d => d.label), width: canvas.width, painted};
        })""")
        assert [c["id"] for c in charts] == [chart[0] for chart in quality.CHARTS]
        for chart in charts:
            assert chart["type"] == "line"
            assert chart["labels"] == ["Jan 2025", "Feb 2025", "Mar 2025"]
            assert chart["series"][:3] == ["dr.alpha", "dr.beta", quality.ALL_CLINICIANS]
            assert chart["width"] > 0 and chart["painted"] > 100, f"{chart['id']} was not drawn"
        withdrawal = next(c for c in charts if c["id"] == "withdrawal_median")
        assert withdrawal["series"][-1].startswith("Target")

        assert "dr.alpha" in page.text_content("#quality-rows")
        assert "Not for clinical use." in page.text_content("#not-for-clinical-use")
        outside = [url for url in requests
                   if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != "127.0.0.1"]
        assert outside == []
        assert any(url.endswith("/static/vendor/chartjs/chart.umd.min.js") for url in requests)
        assert problems == []  # no console error, no failed request (the site serves its favicon)
        cookies = context.cookies()
        context.close()

        # Without JavaScript the page keeps every number: the tables are plain HTML.
        no_js = browser.new_context(java_script_enabled=False)
        no_js.add_cookies(cookies)
        page = no_js.new_page()
        page.goto(base + "/qa/quality/" + QUERY)
        alpha = page.locator('#quality-rows tr[data-clinician="dr.alpha"][data-period="2025-01"]').text_content()
        assert "6:50" in alpha and "n=1" in alpha and "meets target" in alpha
        assert page.locator("#quality-totals tr.overall").count() == 1
        no_js.close()
