"""Rate limits: the per-connection token bucket and the cache-backed window counter."""

import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from medvision.rate_limit import TokenBucket, allow_in_shared_window, window_for

ROOT = Path(__file__).resolve().parents[2]


def test_token_bucket_allows_a_burst_then_the_average_rate():
    bucket = TokenBucket(rate=100, capacity=200, now=0.0)
    assert bucket.take(200, now=0.0)  # the full burst
    assert not bucket.take(1, now=0.0)
    assert not bucket.take(60, now=0.5)  # half a second refills 50
    assert bucket.take(50, now=0.5)
    assert bucket.take(200, now=10.0)  # refills to capacity, never beyond
    assert not bucket.take(1, now=10.0)


@pytest.mark.parametrize(("per_second", "expected"), [(10, (1, 10)), (2.5, (1, 2)), (1, (1, 1)), (0.5, (2, 1)),
                                                      (0.3, (4, 1))])
def test_window_for_turns_a_rate_into_a_window_and_allowance(per_second, expected):
    assert window_for(per_second) == expected


def test_shared_window_counts_per_key_and_resets_with_the_next_window():
    allow = async_to_sync(allow_in_shared_window)
    now = 1_800_000_000.1
    assert [allow("live:a", 3, now) for _ in range(4)] == [True, True, True, False]
    assert allow("live:b", 3, now)  # another session has its own budget
    assert allow("live:a", 3, now + 1.0)


@pytest.mark.skipif(not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"),
                    reason="services profile only (the embedded profile is one process)")
def test_the_window_is_shared_across_processes():
    """Another process spends the allowance; this process then finds it spent."""
    now = 1_800_000_000.1
    code = (
        "import django; django.setup()\n"
        "from asgiref.sync import async_to_sync\n"
        "from medvision.rate_limit import allow_in_shared_window as a\n"
        f"print([async_to_sync(a)('live:x', 2, {now}) for _ in range(2)])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "[True, True]"
    assert async_to_sync(allow_in_shared_window)("live:x", 2, now) is False
