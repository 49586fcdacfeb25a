"""WebSocket authentication.

Browsers authenticate with the portal's session cookie. Because a cookie is sent by the
browser on any site's behalf, cookie-authenticated sockets must come from one of our own
origins (cross-site WebSocket hijacking). Devices (a capture box beside the endoscopy
tower) authenticate with an API token in ``?token=`` or an ``Authorization: Token ...``
header; a token is no ambient credential, so no Origin is required then.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from .broadcast import register_server_loop


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except Token.DoesNotExist:
        return None
    return token.user if token.user.is_active else None


def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
                return parts[1]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("token")
    return values[0] if values else None


def _origin_allowed(scope) -> bool:
    """A cookie-authenticated socket must come from a page of this very site: the page's
    origin (scheme, host and port) equals the one the socket was opened on, or is listed
    in CSRF_TRUSTED_ORIGINS (a proxy with another public origin). A host name alone is
    not enough: a page on http://localhost:6666 is not this site on http://localhost:8000."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    host = headers.get(b"host")
    if origin is None:
        return False
    origin = origin.decode("latin-1").strip().rstrip("/").lower()
    if origin in {trusted.rstrip("/").lower() for trusted in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    if host is None:
        return False
    host = host.decode("latin-1").strip().lower()
    if not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        return False
    return origin == f"{_page_scheme(scope, headers)}://{host}"


def _page_scheme(scope, headers) -> str:
    """The scheme of the page that opened the socket: wss -> https, or what a trusted
    TLS-terminating proxy says (SECURE_PROXY_SSL_HEADER, as for HTTP requests)."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        if headers.get(name, b"").decode("latin-1").split(",")[0].strip() == proxy_header[1]:
            return "https"
    return "https" if scope.get("scheme") == "wss" else "http"


class TokenOrCookieAuthMiddleware:
    """Sets ``scope["user"]`` and ``scope["auth_method"]`` ("token", "cookie" or None)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        key = _token_from_scope(scope)
        if key:
            user = await _user_for_token(key)
            scope = dict(scope, user=user or AnonymousUser(), auth_method="token" if user else None)
            return await self.inner(scope, receive, send)
        user = scope.get("user")
        if user is not None and user.is_authenticated and not _origin_allowed(scope):
            user = AnonymousUser()  # a foreign page is using our cookie: treat as anonymous
        scope = dict(scope, user=user or AnonymousUser(),
                     auth_method="cookie" if user is not None and user.is_authenticated else None)
        return await self.inner(scope, receive, send)


def WebSocketAuthStack(inner):  # noqa: N802 - mirrors channels' AuthMiddlewareStack
    return AuthMiddlewareStack(TokenOrCookieAuthMiddleware(inner))


# Close codes every consumer uses: 4401 not signed in, 4403 may read but not use this
# socket, 4404 no such session (or not yours).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_READ_ONLY = 4403
CLOSE_NOT_FOUND = 4404
_REFUSALS = {CLOSE_UNAUTHENTICATED: "not_authenticated", CLOSE_READ_ONLY: "read_only", CLOSE_NOT_FOUND: "not_found"}


async def refuse(consumer, code: int, message: str) -> None:
    """Turn a socket away so that the client learns why.

    Closing before ``accept()`` makes the server reject the handshake with an HTTP 403,
    and the close code never reaches the browser, whose pages need it to stop
    reconnecting. So: accept, send one error event, close with the code.
    """
    await consumer.accept()
    await consumer.send(text_data=json.dumps({"type": "error", "code": _REFUSALS.get(code, "refused"),
                                              "message": message, "fatal": True}))
    await consumer.close(code=code)


async def signed_in_user(consumer, message: str):
    """The connecting user, or None after turning the socket away with 4401 (``message``
    says how to sign in). Every consumer's ``connect`` starts here; it also lets the server
    loop be known to the broadcast transport (medvision.broadcast)."""
    register_server_loop()
    user = consumer.scope.get("user")
    if user is None or not user.is_authenticated:
        await refuse(consumer, CLOSE_UNAUTHENTICATED, message)
        return None
    return user
