"""The in-process limiter storage counts, expires and sweeps without timer threads."""

from __future__ import annotations

import threading
import time

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from webapp.ratelimit import SweepingMemoryStorage


def test_counts_and_expires_like_the_memory_storage():
    store = storage_from_string("beacon-memory://")
    assert isinstance(store, SweepingMemoryStorage)
    limiter = FixedWindowRateLimiter(store)
    limit = RateLimitItemPerSecond(3)
    assert [limiter.hit(limit, "token:1") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(limit, "token:2")
    time.sleep(1.05)
    assert limiter.hit(limit, "token:1")


def test_no_timer_thread_per_request(monkeypatch):
    import limits.storage.memory as memory

    started = []

    class CountingTimer(threading.Timer):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(memory.threading, "Timer", CountingTimer)
    store = SweepingMemoryStorage()
    for n in range(5):
        store.incr(f"key:{n}", expiry=60)
        time.sleep(0.02)  # the library's own timer has fired by now
    assert len(started) <= 1  # only the one the base class starts at creation
    assert store.get("key:0") == 1
