"""Per-principal rate limits for the API: one fixed-window counter per principal.

A blueprint given to `RateLimiter.limit_blueprint` spends one unit of its principal's budget
(a `limits` rate such as "1200 per minute") on every request that reached a view; over the
budget the request is refused with 429 and Retry-After (the seconds until the window
resets) before the view runs. With RATELIMIT_HEADERS_ENABLED every counted response also
carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (epoch seconds).

Counters live in RATELIMIT_STORAGE_URI: Redis when REDIS_URL is set (shared by every
process), else this process's memory (`beacon-memory://`). RATELIMIT_ENABLED=False turns
counting off (tests). The strategy is the `limits` library's fixed window (a window starts
at a principal's first request and lasts the limit's period), counted with one storage
increment per request, so one principal's concurrent requests can never overspend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from flask import Blueprint, Flask, Response, current_app, g
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from werkzeug.exceptions import TooManyRequests

EXTENSION = "beacon_rate_limit"
RESET_CACHE_SIZE = 10_000


class SweepingMemoryStorage(MemoryStorage):
    """In-process limiter storage: `beacon-memory://` (used when REDIS_URL is not set).

    The `limits` library's memory storage starts a new timer thread on nearly every counted
    request to sweep expired keys; under load that thread start is a third of a cheap API
    request. This storage sweeps inline, at most once a second: counters still expire on
    read exactly as before (`get` checks the expiry), only the memory clean-up is batched.
    """

    STORAGE_SCHEME = ["beacon-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (overrides a private hook)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()


@lru_cache(maxsize=32)
def parse_limit(text: str) -> RateLimitItem:
    """A limit string such as "1200 per minute" as a `limits` item (parsed once)."""
    return parse(text)


@dataclass
class _State:
    enabled: bool
    headers: bool
    storage: Storage
    # counter key -> when its window resets (epoch seconds), as this process last learnt it
    resets: dict[str, float] = field(default_factory=dict)

    def reset_at(self, spent: Spent) -> float:
        """When the spent counter's window resets, asking the storage at most once a window.

        A fixed window only ends at its expiry, so a reset time learnt in this process holds
        until then; the request that opens a window (count 1) knows it without asking. With
        Redis this saves a round trip on nearly every request.
        """
        now = time.time()
        if spent.count == 1:
            reset = now + spent.limit.get_expiry()
        else:
            reset = self.resets.get(spent.key, 0.0)
            if reset <= now:
                reset = self.storage.get_expiry(spent.key)
        if len(self.resets) >= RESET_CACHE_SIZE:
            self.resets = {k: v for k, v in self.resets.items() if v > now}
            if len(self.resets) >= RESET_CACHE_SIZE:
                self.resets.clear()
        self.resets[spent.key] = reset
        return reset


class Spent(NamedTuple):
    """What a counted request spent: the limit, the counter's key and its new count."""

    limit: RateLimitItem
    key: str
    count: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit.amount - self.count)


class RateLimiter:
    """The app's rate limiter (bound to each app in create_app, state in app.extensions)."""

    def init_app(self, app: Flask) -> None:
        """Open the counter storage named by RATELIMIT_STORAGE_URI for this app."""
        app.extensions[EXTENSION] = _State(
            enabled=bool(app.config["RATELIMIT_ENABLED"]),
            headers=bool(app.config["RATELIMIT_HEADERS_ENABLED"]),
            storage=storage_from_string(app.config["RATELIMIT_STORAGE_URI"]))

    def limit_blueprint(self, bp: Blueprint, *, scope: str, limit: Callable[[], str],
                        key: Callable[[], str]) -> None:
        """Give every principal (named by `key`) one shared budget (`limit`) on `bp`.

        Call it before registering the blueprint's other before_request hooks: Flask runs
        them in order, so requests are counted before the hooks registered later refuse them.
        """

        def check() -> None:
            state: _State = current_app.extensions[EXTENSION]
            if not state.enabled:
                return
            item = parse_limit(limit())
            counter = item.key_for(scope, key())
            spent = Spent(item, counter, state.storage.incr(counter, item.get_expiry()))
            g.rate_limit_spent = spent
            if spent.count > item.amount:
                raise TooManyRequests(str(item), retry_after=self._retry_after(state, spent))

        def add_headers(response: Response) -> Response:
            spent: Spent | None = g.pop("rate_limit_spent", None)
            if spent is not None:
                state: _State = current_app.extensions[EXTENSION]
                if state.headers:
                    headers = response.headers  # only this hook writes these: plain appends
                    headers.add("X-RateLimit-Limit", str(spent.limit.amount))
                    headers.add("X-RateLimit-Remaining", str(spent.remaining))
                    headers.add("X-RateLimit-Reset", str(int(state.reset_at(spent))))
            return response

        bp.before_request(check)
        bp.after_request(add_headers)

    @staticmethod
    def _retry_after(state: _State, spent: Spent) -> int:
        """Whole seconds until the principal's window resets (at least 1)."""
        return max(1, math.ceil(state.reset_at(spent) - time.time()))

    def reset(self, app: Flask) -> None:
        """Forget every counter of `app` (tests)."""
        app.extensions[EXTENSION].storage.reset()
