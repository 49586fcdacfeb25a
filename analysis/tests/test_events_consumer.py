"""The session events feed: authorized before accept, and broadcasts reach every page."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from medvision.broadcast import abroadcast
from medvision.routing import websocket_urlpatterns
from medvision.ws_auth import WebSocketAuthStack
from testing import servers as testing
from testing.servers import refusal_or_first_event

pytestmark = pytest.mark.django_db(transaction=True)


def app():
    return WebSocketAuthStack(URLRouter(websocket_urlpatterns))


session_cookie_for = sync_to_async(testing.session_cookie_for)


async def test_broadcast_reaches_every_open_page_of_the_session(session, clinician, qa_user):
    path = f"/ws/procedures/{session.pk}/events/"
    pages = []
    for user in (clinician, qa_user):
        cookie = await session_cookie_for(user)
        page = WebsocketCommunicator(app(), path, headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")])
        connected, _ = await page.connect()
        assert connected
        hello = await page.receive_json_from()
        assert hello["type"] == "hello" and hello["session"] == str(session.pk)
        pages.append(page)
    await abroadcast(session.pk, {"type": "progress", "stage": "analysing", "done": 3, "total": 10})
    for page in pages:
        assert await page.receive_json_from(timeout=3) == {"type": "progress", "stage": "analysing", "done": 3, "total": 10}
        await page.disconnect()


async def test_cookie_from_a_foreign_origin_is_refused(session, clinician):
    cookie = await session_cookie_for(clinician)
    page = WebsocketCommunicator(
        app(), f"/ws/procedures/{session.pk}/events/", headers=[(b"cookie", cookie), (b"origin", b"https://evil.example"), (b"host", b"localhost")]
    )
    assert await page.connect() == (True, None)
    assert (await refusal_or_first_event(page)) == (4401, None)


async def test_the_feed_is_read_only(session, clinician):
    cookie = await session_cookie_for(clinician)
    page = WebsocketCommunicator(
        app(), f"/ws/procedures/{session.pk}/events/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")]
    )
    await page.connect()
    await page.receive_json_from()
    await page.send_json_to({"type": "confirm", "finding": "x"})
    reply = await page.receive_json_from()
    assert reply["type"] == "error" and reply["code"] == "read_only"
    await page.disconnect()


@pytest.mark.parametrize("origin", [b"http://localhost:6666", b"https://localhost", b"http://localhost.evil.example",
                                    b"null"])
async def test_a_page_on_another_port_or_scheme_of_the_same_host_is_refused(session, clinician, origin):
    """The full origin counts, not the host name: another port is another site."""
    cookie = await session_cookie_for(clinician)
    page = WebsocketCommunicator(app(), f"/ws/procedures/{session.pk}/events/",
                                 headers=[(b"cookie", cookie), (b"origin", origin), (b"host", b"localhost")])
    assert await page.connect() == (True, None)
    assert (await refusal_or_first_event(page)) == (4401, None)


async def test_a_trusted_proxy_origin_is_accepted(session, clinician, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://medvision.hospital.example"]
    cookie = await session_cookie_for(clinician)
    page = WebsocketCommunicator(app(), f"/ws/procedures/{session.pk}/events/",
                                 headers=[(b"cookie", cookie), (b"origin", b"https://medvision.hospital.example"),
                                          (b"host", b"127.0.0.1:8000")])
    assert await page.connect() == (True, None)
    refused, hello = await refusal_or_first_event(page)
    assert refused is None and hello["type"] == "hello"
    await page.disconnect()
