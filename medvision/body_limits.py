"""Refuse oversized request bodies before they are read.

Django's ASGI handler reads a whole request body (into a temporary file past 2.5 MB) before
any view runs, so a view's own size check comes too late: a 400 MB POST to ``/healthz`` was
written to disk before its 403, and a declared 10 GB body was waited for. This middleware
sits in front of Django and answers 413 at once when the declared ``Content-Length`` is over
the route's limit, and stops reading (413) when a body without a declared length grows past
it. Limits are per route: the single-request recording upload gets
``VIDEO_SINGLE_REQUEST_MAX_BYTES`` (plus room for the multipart envelope), a resumable upload's PATCH ``TUS_MAX_CHUNK_BYTES``, everything else ``REQUEST_MAX_BODY_BYTES``. The same for
anonymous and signed-in clients: at this point nobody is authenticated yet, and the
limits are generous for every legitimate request.

Daphne itself buffers a body before calling any ASGI application, so under daphne the same
limits are applied earlier, as the headers arrive (``daphne_limits``); this middleware is
the guard for servers that stream bodies to the application. In production the TLS proxy
in front should refuse the same sizes first (nginx: ``client_max_body_size``; README).
"""

from __future__ import annotations

import json
import re

from django.conf import settings

MULTIPART_ROOM = 1024 * 1024  # the multipart envelope around an uploaded file
UPLOAD_ROUTE = re.compile(r"^/api/v1/procedures/[^/]+/video/$")
# A resumable upload's chunk (analysis.uploads): small on purpose, whatever the file's size.
CHUNK_ROUTE = re.compile(r"^/api/v1/procedures/[^/]+/uploads/[^/]+/$")


def body_limit(path: str, method: str) -> int:
    """The most bytes a request to ``path`` may carry."""
    if method == "POST" and UPLOAD_ROUTE.match(path):
        return min(settings.VIDEO_MAX_UPLOAD_BYTES, settings.VIDEO_SINGLE_REQUEST_MAX_BYTES) + MULTIPART_ROOM
    if method == "PATCH" and CHUNK_ROUTE.match(path):
        return settings.TUS_MAX_CHUNK_BYTES
    return settings.REQUEST_MAX_BODY_BYTES


def _human(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def refusal_body(limit: int) -> dict:
    return {"error": {"code": "too_large", "message": f"The request body is larger than this address accepts "
                                                      f"({_human(limit)}); send less (a recording goes to the "
                                                      "resumable upload endpoint, /api/v1/procedures/{id}/uploads/, "
                                                      "in chunks)."}}


async def _refuse(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope) -> int | str | None:
    values = [value for name, value in scope.get("headers", []) if name == b"content-length"]
    if not values:
        return None
    if len(set(values)) > 1:
        return "conflicting"
    text = values[0].decode("latin-1").strip()
    return int(text) if text.isdigit() else "invalid"


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope.get("path", ""), scope.get("method", "GET"))
        too_large = refusal_body(limit)["error"]["message"]
        declared = _declared_length(scope)
        if isinstance(declared, str):
            return await _refuse(send, 400, "bad_request", f"The request has a {declared} Content-Length header.")
        if declared is not None and declared > limit:
            return await _refuse(send, 413, "too_large", too_large)

        received = 0
        over = False
        started = False

        async def limited_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    # Django stops reading at a disconnect and answers nothing; we answer.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if over and not started:
            await _refuse(send, 413, "too_large", too_large)
