"""Oversized request bodies are refused before they are read (medvision.body_limits)."""

import json
import socket
import time

import pytest
from asgiref.testing import ApplicationCommunicator

from medvision.body_limits import BodyLimitMiddleware, body_limit


class ReadingApp:
    """Stands in for Django's ASGI handler: reads the whole body, then answers 200."""

    def __init__(self):
        self.read = 0
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # Django: RequestAborted, no response
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def http_scope(path, method="POST", length=None):
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": method, "path": path, "headers": headers, "query_string": b""}


async def response_of(communicator):
    start = await communicator.receive_output(2)
    body = await communicator.receive_output(2)
    return start["status"], body.get("body", b"")


async def test_a_declared_10_gb_body_is_refused_before_a_byte_is_read():
    inner = ReadingApp()
    communicator = ApplicationCommunicator(BodyLimitMiddleware(inner), http_scope("/healthz", length=10 * 1024**3))
    status, body = await response_of(communicator)
    assert status == 413 and not inner.called
    assert json.loads(body)["error"]["code"] == "too_large"


async def test_a_body_without_a_declared_length_stops_being_read_past_the_limit(settings):
    settings.REQUEST_MAX_BODY_BYTES = 64 * 1024
    inner = ReadingApp()
    communicator = ApplicationCommunicator(BodyLimitMiddleware(inner), http_scope("/api/v1/auth/token/"))
    for _ in range(4):
        await communicator.send_input({"type": "http.request", "body": b"x" * 32 * 1024, "more_body": True})
    status, body = await response_of(communicator)
    assert status == 413 and inner.read <= 64 * 1024
    assert "larger than this address accepts (64.0 KB)" in json.loads(body)["error"]["message"]


async def test_requests_within_the_limit_pass_untouched():
    inner = ReadingApp()
    communicator = ApplicationCommunicator(BodyLimitMiddleware(inner), http_scope("/api/v1/procedures/", length=12))
    await communicator.send_input({"type": "http.request", "body": b'{"title":""}', "more_body": False})
    assert await response_of(communicator) == (200, b"ok")


def test_the_upload_route_gets_the_single_request_limit_and_nothing_else_does(settings):
    settings.VIDEO_MAX_UPLOAD_BYTES = 4 * 1024**3
    settings.VIDEO_SINGLE_REQUEST_MAX_BYTES = 64 * 1024**2
    upload = "/api/v1/procedures/3f2c51c4-3b2a-4e7e-9f5e-0c1d2e3f4a5b/video/"
    assert 64 * 1024**2 < body_limit(upload, "POST") < 66 * 1024**2
    assert body_limit(upload, "GET") == settings.REQUEST_MAX_BODY_BYTES
    assert body_limit("/healthz", "POST") == settings.REQUEST_MAX_BODY_BYTES


async def test_a_conflicting_content_length_is_a_bad_request():
    scope = http_scope("/healthz", length=10)
    scope["headers"].append((b"content-length", b"99"))
    status, _ = await response_of(ApplicationCommunicator(BodyLimitMiddleware(ReadingApp()), scope))
    assert status == 400


@pytest.mark.django_db(transaction=True)
def test_the_real_server_answers_413_at_once_to_a_huge_declared_body(tmp_path, media_root):
    from testing.servers import daphne

    with daphne(tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            started = time.monotonic()
            conn.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 10737418240\r\n\r\n")
            reply = conn.recv(4096)
            elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert elapsed < 5, "answered without waiting for the body"




@pytest.mark.django_db(transaction=True)
def test_the_real_server_cuts_off_an_undeclared_body_past_the_limit(tmp_path, media_root):
    from testing.servers import daphne

    with daphne(tmp_path, REQUEST_MAX_BODY_BYTES="65536") as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * 16384
            reply = b""
            try:
                for _ in range(64):  # up to 1 MiB, far past the 64 KiB limit
                    conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                pass  # the server closed the connection after answering
            reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"too_large"' in reply
