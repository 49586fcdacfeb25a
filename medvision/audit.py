"""Audit helpers on top of django-auditlog.

- ``acting_as(user)``: every write a service makes is attributed to the person (or service
  account) who asked for it, whether the call came from a page, the API, a task or a
  WebSocket consumer. auditlog's own ``set_actor`` does not nest: leaving an inner block
  disconnects its hook but leaves its context value behind, which breaks the outer block.
  So this helper always opens its own ``set_actor`` and puts the outer value back after.
- ``log_access(...)``: an ACCESS entry for reads of clinical data (opening a session,
  listing findings, downloading an export, a key frame, a recording, an admin page);
  ``log_access_many`` for lists (one entry per session shown, in one query).
- ``AuditMiddleware``: auditlog's middleware, but the client address comes from
  ``X-Forwarded-For`` only when the request reached us through a proxy we trust
  (``TRUSTED_PROXIES``); otherwise anybody could write any address into the trail.
- Users with audit entries cannot be deleted (``protect_audited_users``): the entries
  would lose who made them. Deactivate the account instead.
"""

from __future__ import annotations

import contextlib
import ipaddress

from auditlog.cid import get_cid
from auditlog.context import auditlog_value, set_actor
from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import ProtectedError


def _current_context() -> dict | None:
    try:
        return auditlog_value.get()
    except LookupError:
        return None


@contextlib.contextmanager
def acting_as(user):
    outer = _current_context()
    remote_addr = outer.get("remote_addr") if outer else None
    try:
        with set_actor(user, remote_addr=remote_addr):
            yield
    finally:
        if outer is not None:
            auditlog_value.set(outer)


def log_access(*, actor, instance, what: str, **details) -> LogEntry:
    """Record that ``actor`` read ``instance`` (``what`` says which view of it)."""
    context = _current_context() or {}
    return LogEntry.objects.log_create(
        instance,
        force_log=True,
        action=LogEntry.Action.ACCESS,
        changes=None,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        remote_addr=context.get("remote_addr"),
        additional_data={"what": what, **details},
    )


def log_access_many(*, actor, instances, what: str, **details) -> int:
    """One ACCESS entry per distinct instance (a list page shows many sessions), in one
    query. Returns how many were written."""
    unique = {(type(obj), obj.pk): obj for obj in instances}
    if not unique:
        return 0
    context = _current_context() or {}
    user = actor if getattr(actor, "is_authenticated", False) else None
    cid = get_cid()
    entries = [
        LogEntry(content_type=ContentType.objects.get_for_model(obj), object_pk=str(obj.pk), object_repr=str(obj)[:500],
                 action=LogEntry.Action.ACCESS, actor=user, actor_email=getattr(user, "email", None) or None,
                 remote_addr=context.get("remote_addr"), additional_data={"what": what, **details}, cid=cid)
        for obj in unique.values()
    ]
    LogEntry.objects.bulk_create(entries)
    return len(entries)


def _trusted(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.TRUSTED_PROXIES)


def client_address(meta: dict) -> str | None:
    """The client's address: the connection's peer, or - when that peer is one of our
    trusted proxies - the last address in X-Forwarded-For that is not a trusted proxy."""
    peer = meta.get("REMOTE_ADDR")
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not forwarded or not _trusted(peer):
        return peer
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _trusted(hop):
            return hop
    return peer


class AuditMiddleware(AuditlogMiddleware):
    @staticmethod
    def _get_remote_addr(request):
        if settings.AUDITLOG_DISABLE_REMOTE_ADDR:
            return None
        return client_address(request.META)

    @staticmethod
    def _get_remote_port(request):
        return None  # X-Forwarded-Port is as client-controlled as X-Forwarded-For


def protect_audited_users(sender, instance, **kwargs):
    """pre_delete of a user: refuse when the audit trail names them."""
    if LogEntry.objects.filter(actor=instance).exists():
        raise ProtectedError(
            f"The user {instance.get_username()!r} appears in the audit trail and cannot be deleted "
            "(their entries would lose who made them). Deactivate the account instead.",
            set(),
        )
