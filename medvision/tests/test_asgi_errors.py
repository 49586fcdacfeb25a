"""A request Django cannot build is still answered in JSON under /api/ (medvision.asgi_errors)."""

import json

from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application

from medvision.asgi_errors import UnreadableRequestMiddleware

from .test_body_limits import ReadingApp, response_of


def scope(path, query_string):
    return {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": query_string,
            "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000)}


async def answer(app, path, query_string):
    communicator = ApplicationCommunicator(app, scope(path, query_string))
    await communicator.send_input({"type": "http.request", "body": b""})
    return await response_of(communicator)


async def test_django_alone_answers_a_raw_byte_query_string_with_an_empty_400():
    status, body = await answer(get_asgi_application(), "/api/v1/procedures/", b"risk=\xff")
    assert status == 400 and body == b""  # what the integrator saw before (issue #11)


async def test_under_api_it_is_the_json_error_envelope():
    inner = ReadingApp()
    status, body = await answer(UnreadableRequestMiddleware(inner), "/api/v1/procedures/", b"risk=\xff")
    assert status == 400 and not inner.called
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and "percent-encode" in error["message"]


async def test_readable_requests_and_other_paths_pass_untouched():
    for path, query in (("/api/v1/procedures/", b"risk=%FF"), ("/sessions/", b"q=\xff")):
        inner = ReadingApp()
        status, _ = await answer(UnreadableRequestMiddleware(inner), path, query)
        assert status == 200 and inner.called


def test_the_served_application_includes_it():
    from medvision import asgi

    assert isinstance(asgi.application.application_mapping["http"], UnreadableRequestMiddleware)
