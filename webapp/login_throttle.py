"""Sign-in throttling that slows password guessing without letting anyone lock a user out.

Two counters of failed sign-ins, each with exponential backoff:

- **per client address** (an IPv4 address, or the /64 network of an IPv6 address): the
  first `LOGIN_ADDRESS_FREE_FAILURES` (10) failures cost nothing; after that every further
  attempt from the address must wait 1 s, then 2 s, 4 s, … up to `LOGIN_BACKOFF_MAX_SECONDS`
  (15 minutes). This slows a guesser, and only the guesser's own address waits.
- **per account**, counting only attempts from browsers that have not signed in to that
  account before: the first `LOGIN_ACCOUNT_FREE_FAILURES` (5) are free, then the same
  doubling backoff. This slows a guesser who spreads attempts over many addresses. A
  browser the account has signed in with carries a signed remembered-device cookie and is
  exempt, so a stranger hammering an email never keeps its owner out of their usual browser.

Counters are forgotten `LOGIN_FAILURE_MEMORY_SECONDS` (24 h) after their last failure. A
successful sign-in clears the account's counter and takes back its own attempt from the
address counter. An attempt refused because of a wait is not counted and checks no password.

Counters live in Redis when `REDIS_URL` is set, else in the database (`login_throttles`),
so every gunicorn process sees the same counts. Each attempt is reserved atomically before
the password is checked (a Lua script in Redis, compare-and-set in SQL), so parallel
requests cannot slip extra guesses through a wait.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, Request, Response, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import LoginThrottle
from webapp.timeutil import utcnow

log = logging.getLogger(__name__)

DEVICE_COOKIE = "beacon_device"
DEVICE_SALT = "beacon-remembered-device"
DEVICE_MAX_AGE = 365 * 24 * 3600
DEVICE_MAX_ACCOUNTS = 10
REDIS_PREFIX = "beacon:login-throttle:"
CAS_TRIES = 5

DEFAULTS = {
    "LOGIN_ADDRESS_FREE_FAILURES": 10,
    "LOGIN_ACCOUNT_FREE_FAILURES": 5,
    "LOGIN_BACKOFF_MAX_SECONDS": 900,
    "LOGIN_FAILURE_MEMORY_SECONDS": 24 * 3600,
}


@dataclass(frozen=True)
class Policy:
    """The free failures before backoff starts, the backoff cap and the counters' memory."""

    free: int
    cap: float
    memory: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after this many failures: 0 while free, then 1, 2, 4, … to the cap."""
        if failures <= self.free:
            return 0.0
        return float(min(self.cap, 2 ** min(failures - self.free - 1, 40)))


def _setting(name: str) -> int:
    return int(current_app.config.get(name, DEFAULTS[name]))


def address_policy() -> Policy:
    """The per-address policy in force."""
    return Policy(_setting("LOGIN_ADDRESS_FREE_FAILURES"), _setting("LOGIN_BACKOFF_MAX_SECONDS"),
                  _setting("LOGIN_FAILURE_MEMORY_SECONDS"))


def account_policy() -> Policy:
    """The per-account policy in force (for browsers the account has not signed in with)."""
    return Policy(_setting("LOGIN_ACCOUNT_FREE_FAILURES"), _setting("LOGIN_BACKOFF_MAX_SECONDS"),
                  _setting("LOGIN_FAILURE_MEMORY_SECONDS"))


def address_key(remote_addr: str | None) -> str:
    """The counter key of a client address; an IPv6 client counts as its /64 network."""
    text = (remote_addr or "unknown").strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "ip:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


def account_key(email: str) -> str:
    """The counter key of an account, by its email (the same whether or not it exists)."""
    return "acct:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:40]


# --- the stores -------------------------------------------------------------------------

_HIT_SCRIPT = """
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local memory = tonumber(ARGV[4])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
if blocked > now then
  return tostring(blocked - now)
end
local failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
local delay = 0
if failures > free then
  delay = math.min(cap, 2 ^ math.min(failures - free - 1, 40))
end
redis.call('HSET', KEYS[1], 'b', tostring(now + delay))
redis.call('EXPIRE', KEYS[1], math.ceil(memory))
return '0'
"""

_UNDO_SCRIPT = """
local failures = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
if failures > 0 then
  redis.call('HSET', KEYS[1], 'f', failures - 1)
end
return failures
"""


class RedisStore:
    """Counters as Redis hashes (failures `f`, blocked-until `b` in epoch seconds)."""

    def __init__(self, client) -> None:
        self.client = client
        self._hit = client.register_script(_HIT_SCRIPT)
        self._undo = client.register_script(_UNDO_SCRIPT)

    def hit(self, key: str, policy: Policy) -> float:
        """Reserve one attempt: 0 when allowed (counted), else the seconds still to wait."""
        wait = self._hit(keys=[REDIS_PREFIX + key],
                         args=[repr(time.time()), policy.free, policy.cap, policy.memory])
        return float(wait)

    def undo(self, key: str) -> None:
        """Take back one reserved attempt (it turned out a success)."""
        self._undo(keys=[REDIS_PREFIX + key])

    def clear(self, key: str) -> None:
        """Forget the counter."""
        self.client.delete(REDIS_PREFIX + key)


class DatabaseStore:
    """Counters in the `login_throttles` table, in transactions of their own."""

    table = LoginThrottle.__table__

    def hit(self, key: str, policy: Policy) -> float:
        """Reserve one attempt: 0 when allowed (counted), else the seconds still to wait."""
        t = self.table.c
        for _ in range(CAS_TRIES):
            now = utcnow()
            try:
                with db.engine.begin() as conn:
                    row = conn.execute(select(t.failures, t.blocked_until, t.expires_at)
                                       .where(t.key == key)).first()
                    live = row is not None and row.expires_at > now
                    if live and row.blocked_until > now:
                        return (row.blocked_until - now).total_seconds()
                    failures = (row.failures if live else 0) + 1
                    values = {"failures": failures,
                              "blocked_until": now + timedelta(seconds=policy.delay(failures)),
                              "expires_at": now + timedelta(seconds=policy.memory)}
                    if row is None:
                        conn.execute(delete(self.table).where(t.expires_at <= now))
                        conn.execute(insert(self.table).values(key=key, **values))
                        return 0.0
                    # Compare-and-set: a parallel attempt that changed the row first wins.
                    changed = conn.execute(update(self.table).where(
                        t.key == key, t.failures == row.failures,
                        t.expires_at == row.expires_at).values(**values))
                    if changed.rowcount == 1:
                        return 0.0
            except IntegrityError:  # a parallel attempt inserted the row first
                pass
        return 1.0  # heavy contention on one key: ask to try again in a moment

    def undo(self, key: str) -> None:
        """Take back one reserved attempt (it turned out a success)."""
        t = self.table.c
        with db.engine.begin() as conn:
            conn.execute(update(self.table).where(t.key == key, t.failures > 0)
                         .values(failures=t.failures - 1))

    def clear(self, key: str) -> None:
        """Forget the counter."""
        with db.engine.begin() as conn:
            conn.execute(delete(self.table).where(self.table.c.key == key))


class _FallbackStore:
    """Redis, falling back to the database for a call when Redis cannot be reached."""

    def __init__(self, primary: RedisStore, fallback: DatabaseStore) -> None:
        self.primary, self.fallback = primary, fallback

    def _call(self, name: str, *args):
        from redis.exceptions import RedisError

        try:
            return getattr(self.primary, name)(*args)
        except RedisError:
            log.warning("login throttling: Redis unavailable, using the database",
                        exc_info=True)
            return getattr(self.fallback, name)(*args)

    def hit(self, key: str, policy: Policy) -> float:
        """See RedisStore.hit."""
        return self._call("hit", key, policy)

    def undo(self, key: str) -> None:
        """See RedisStore.undo."""
        self._call("undo", key)

    def clear(self, key: str) -> None:
        """See RedisStore.clear."""
        self._call("clear", key)


def store():
    """The counter store of this app: Redis when REDIS_URL is set, else the database."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return DatabaseStore()
    from webapp.jobs import redis_client

    return _FallbackStore(RedisStore(redis_client(url, 2.0)), DatabaseStore())


def wait_text(seconds: float) -> str:
    """A wait as a person reads it: "1 second", "8 seconds", "3 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# --- the remembered-device cookie -------------------------------------------------------

def _serializer(app: Flask) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(app.secret_key, salt=DEVICE_SALT)


def remembered_accounts(request: Request) -> list[int]:
    """The user ids this browser has signed in as (from its signed cookie), newest first."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        ids = _serializer(current_app).loads(raw, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return []
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def remember_device(response: Response, request: Request, user_id: int) -> None:
    """Mark this browser as one the user has signed in with (kept for a year)."""
    ids = [user_id, *(i for i in remembered_accounts(request) if i != user_id)]
    response.set_cookie(
        DEVICE_COOKIE, _serializer(current_app).dumps(ids[:DEVICE_MAX_ACCOUNTS]),
        max_age=DEVICE_MAX_AGE, httponly=True, samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
