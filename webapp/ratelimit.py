"""Rate-limit storage for a single process without Redis.

The `limits` library's memory storage starts a new timer thread on nearly every counted
request to sweep expired keys; under load that thread start is a third of a cheap API
request. This storage sweeps inline, at most once a second: counters still expire on read
exactly as before (`get` checks the expiry), only the memory clean-up is batched.
"""

from __future__ import annotations

import time

from limits.storage import MemoryStorage


class SweepingMemoryStorage(MemoryStorage):
    """In-process limiter storage: `beacon-memory://` (used when REDIS_URL is not set)."""

    STORAGE_SCHEME = ["beacon-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (overrides a private hook)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()
