"""WebSocket authentication.

Browsers authenticate with the portal's session cookie. Because a cookie is sent by the
browser on any site's behalf, cookie-authenticated sockets must come from one of our own
origins (cross-site WebSocket hijacking). Devices (a capture box beside the endoscopy
tower) authenticate with an API token in ``?token=`` or an ``Authorization: Token ...``
header; a token is no ambient credential, so no Origin is required then.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import validate_host


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
    origin = dict(scope.get("headers", [])).get(b"origin")
    if origin is None:
        return False
    host = urlparse(origin.decode("latin-1")).hostname or ""
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return validate_host(host, allowed)


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
