"""Body limits inside daphne, where a request's body is first buffered.

Daphne's HTTP layer (Twisted) receives a request's whole body - into a temporary file -
before it hands the request to any ASGI application, so an ASGI middleware sees an
oversized body only once it was read in full (``body_limits.BodyLimitMiddleware`` still
guards servers that stream). This installs a daphne request class that knows the route's
limit as soon as the headers are in: a declared ``Content-Length`` over it is answered 413
before the body is read, and a body without a declared length is cut off (413) as it grows
past the limit. Installed once, from ``medvision.asgi``, which daphne imports before serving.
"""

from __future__ import annotations

import io
import json
import logging

logger = logging.getLogger(__name__)

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    try:
        from daphne import http_protocol
    except ImportError:  # another ASGI server: the middleware alone guards it
        return
    http_protocol.WebRequest = _limited_request_class(http_protocol.WebRequest)
    _installed = True


def _limited_request_class(base):
    from .body_limits import body_limit, refusal_body

    class LimitedWebRequest(base):
        _limit = None
        _received = 0
        _refused = False

        def gotLength(self, length):  # noqa: N802 - Twisted's name
            # The request line is parsed, the body not yet read: the route's limit is known.
            path = getattr(self.channel, "_path", b"/").split(b"?", 1)[0].decode("latin-1")
            method = getattr(self.channel, "_command", b"GET").decode("latin-1")
            self._limit = body_limit(path, method)
            if length is not None and length > self._limit:
                self.content = io.BytesIO()
                self._refuse()
                return
            super().gotLength(length)

        def handleContentChunk(self, data):  # noqa: N802 - Twisted's name
            if self._refused:
                return
            self._received += len(data)
            if self._limit is not None and self._received > self._limit:
                self._refuse()
                return
            super().handleContentChunk(data)

        def _refuse(self):
            self._refused = True
            body = json.dumps(refusal_body(self._limit)).encode()
            head = (b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            transport = self.channel.transport
            transport.write(head + body)
            transport.loseConnection()
            logger.info("Refused a request body over %d bytes before reading it (%s)", self._limit,
                        getattr(self, "client_addr", None))

    LimitedWebRequest.__name__ = "LimitedWebRequest"
    return LimitedWebRequest
