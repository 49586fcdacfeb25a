"""The voice panel in a real browser: headless Chromium (fake microphone) -> a real daphne
-> the fake Realtime server, all on 127.0.0.1. Checks what only a browser can: the
AudioWorklet really sends 24 kHz PCM16 chunks, assistant audio is played and timed, a
barge-in truncates at the ms actually played, typed questions go through, and model text
is shown as text."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import threading

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from procedures.tests.factories import PASSWORD, ProcedureSessionFactory, UserFactory
from testing import servers as testing

from .fake_realtime import FakeRealtime, pcm_tone

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(180)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


class FakeInThread:
    """The fake Realtime server on its own event loop, for a test whose thread belongs to
    Playwright's synchronous API."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> FakeInThread:
        self.thread.start()

        async def start():
            return await FakeRealtime().__aenter__()

        self.fake = self.call(start())
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(Exception):
            self.call(self.fake.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def page(monkeypatch):
    if shutil.which(CHROMIUM) is None:
        message = f"Chromium not found at {CHROMIUM}: install Debian's 'chromium' package (scripts/test.sh does)."
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_context().new_page()
        page.set_default_timeout(20_000)
        yield page
        browser.close()


@pytest.fixture
def voice_user(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # what the server checks
    return UserFactory(username="dr.voice", role="clinician")


def show_panel(page, user, session, settings):
    """The session page with the voice panel: the page's own include when it has one, else
    the include rendered here and added to the page (as the page template would)."""
    if page.locator("#voice-panel").count():
        return
    settings.OPENAI_API_KEY = "test-key"
    request = RequestFactory().get("/")
    request.user = user
    html = Template("{% load voice_tags %}{% voice_panel session %}").render(
        Context({"request": request, "session": session})
    )
    module = html.split('<script type="module">')[1].split("</script>")[0]
    page.evaluate("html => document.querySelector('main').insertAdjacentHTML('beforeend', html)", html)
    page.add_script_tag(type="module", content=module)


def test_talking_to_the_copilot_in_a_browser(page, voice_user, tmp_path, settings, media_root):
    session = ProcedureSessionFactory(clinician=voice_user)
    with (
        FakeInThread() as fake,
        testing.daphne(tmp_path, OPENAI_API_KEY="test-key", OPENAI_REALTIME_BASE_URL=fake.fake.url) as base,
    ):
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "dr.voice")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/procedures/")
        page.goto(f"{base}/procedures/{session.pk}/")
        show_panel(page, voice_user, session, settings)

        page.wait_for_selector("#voice-panel[data-mounted=true]")
        page.click("#voice-start")
        try:
            # Microphone, worklet, socket, upstream: the slowest step on a loaded machine.
            page.wait_for_selector("#voice-state[data-state=listening]", timeout=45_000)
        except Exception as exc:
            log = (tmp_path / "daphne.log").read_text(errors="replace")[-3000:]
            raise AssertionError(
                f"panel not listening: state={page.text_content('#voice-state')!r} "
                f"error={page.text_content('#voice-error')!r} upstream={fake.fake.connections}\n{log}"
            ) from exc
        upstream = fake.call(fake.fake.connection(0))
        # The fake microphone's beeps arrive as 100 ms chunks of 24 kHz PCM16
        audible = fake.call(
            upstream.wait_for("input_audio_buffer.append", lambda e: any(base64.b64decode(e["audio"])), timeout=10)
        )
        assert len(base64.b64decode(audible["audio"])) == 4800
        assert {len(base64.b64decode(e["audio"])) for e in upstream.of_type("input_audio_buffer.append")} == {4800}

        # The assistant answers with 3 s of audio; the page plays it and shows the words
        item_id = fake.call(upstream.speak("There are two findings so far.", pcm_tone(3000)))
        page.wait_for_selector("#voice-transcript .voice-assistant:has-text('There are two findings so far.')")
        page.wait_for_selector("#voice-state[data-state=speaking]")
        page.wait_for_timeout(800)

        # The clinician talks over it: the page stops and reports what was heard
        fake.call(upstream.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "u1"}))
        truncate = fake.call(upstream.wait_for("conversation.item.truncate", timeout=10))
        assert truncate["item_id"] == item_id and truncate["content_index"] == 0
        assert 400 <= truncate["audio_end_ms"] <= 2500, truncate
        page.wait_for_selector("#voice-state:not([data-state=speaking])")

        # A typed question goes to the model as a user message
        page.fill("#voice-text", "Describe finding one")
        page.press("#voice-text", "Enter")
        question = fake.call(upstream.wait_for("conversation.item.create", lambda e: e["item"].get("role") == "user"))
        assert question["item"]["content"][0]["text"] == "Describe finding one"
        page.wait_for_selector("#voice-transcript .voice-user:has-text('Describe finding one')")

        # Model output is text, never markup
        payload = '<img src=x onerror="window.__xss=1">'
        fake.call(upstream.speak(payload, pcm_tone(100)))
        page.wait_for_selector("#voice-transcript .voice-assistant >> text=onerror")
        assert page.evaluate("window.__xss") is None
        assert page.locator("#voice-transcript img").count() == 0
