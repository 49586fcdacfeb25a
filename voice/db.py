"""Database calls from the relay's event loop.

Every call runs in Channels' database thread (``database_sync_to_async``) starting with
no audit actor, and leaves the audit context as it found it. Why: asgiref copies context
variables back from the thread to the consumer, and django-auditlog keeps its actor in a
context variable that outlives the ``set_actor`` block that connected its signal. Carried
back into the consumer, that stale value made the next ``acting_as`` with the same user
reuse a context whose signal was already gone, and audit entries lost their actor.
(Not a copied context: Django keeps its database connections in context-local storage,
and a copy would open, and leak, a connection per call.)
"""

from __future__ import annotations

from auditlog.context import auditlog_value
from channels.db import database_sync_to_async

# Not None: auditlog's receivers of other threads' set_actor blocks read this value and
# expect a dict; a signal id no receiver uses makes them leave our entries alone.
_NO_ACTOR = {"actor": None, "remote_addr": None, "remote_port": None, "signal_duid": ("medvision.voice", 0)}


def _isolated(fn, args, kwargs):
    token = auditlog_value.set(dict(_NO_ACTOR))
    try:
        return fn(*args, **kwargs)
    finally:
        auditlog_value.reset(token)


async def run_in_db(fn, /, *args, **kwargs):
    return await database_sync_to_async(_isolated)(fn, args, kwargs)
