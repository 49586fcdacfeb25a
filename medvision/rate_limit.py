"""Rate limits: a per-object token bucket, and a window counter shared through the cache.

``TokenBucket`` is for limits that belong to one connection (the voice socket's audio).
``allow_in_shared_window`` is for limits that belong to a resource every process serves
(a session's live frames): its counter lives in the Django cache, which is Redis in the
services profile, so two browser tabs on two daphne processes share one budget.
"""

from __future__ import annotations

import math

from django.core.cache import cache


class TokenBucket:
    """``rate`` units per second on average, bursts of up to ``capacity`` units."""

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate, self.capacity = rate, capacity
        self.tokens, self.last = capacity, now

    def take(self, cost: float, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now
        if cost > self.tokens:
            return False
        self.tokens -= cost
        return True


def window_for(per_second: float) -> tuple[int, int]:
    """(window length in s, events allowed per window) for an average of ``per_second``:
    1 s windows at 1/s and above, longer ones below (0.5/s = 1 event per 2 s)."""
    window_s = max(1, math.ceil(1 / per_second))  # per_second > 0: settings enforce a minimum
    return window_s, max(1, math.floor(per_second * window_s))


async def allow_in_shared_window(key: str, per_second: float, now: float) -> bool:
    """Count one event for ``key`` in the current fixed window (wall-clock ``now``, so every
    process agrees on the window) and say whether it is within the allowance. A fixed
    window may let through up to twice the allowance across a window boundary; that is the
    price of one cache round trip per event, and fine for a protective limit."""
    window_s, allowance = window_for(per_second)
    bucket = f"rate:{key}:{int(now // window_s)}"
    await cache.aadd(bucket, 0, timeout=window_s + 1)
    try:
        count = await cache.aincr(bucket)
    except ValueError:  # expired between add and incr: a fresh window, this is its first event
        await cache.aset(bucket, 1, timeout=window_s + 1)
        count = 1
    return count <= allowance
