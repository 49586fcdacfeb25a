"""Audit helpers on top of django-auditlog.

- ``acting_as(user)``: every write a service makes is attributed to the person (or service
  account) who asked for it, whether the call came from a page, the API, a task or a
  WebSocket consumer. auditlog's own ``set_actor`` does not nest: leaving an inner block
  disconnects its hook but leaves its context value behind, which breaks the outer block.
  So this helper always opens its own ``set_actor`` and puts the outer value back after.
- ``log_access(...)``: an ACCESS entry for reads of clinical data (opening a session,
  listing findings, downloading an export).
"""

from __future__ import annotations

import contextlib

from auditlog.context import auditlog_value, set_actor
from auditlog.models import LogEntry


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
