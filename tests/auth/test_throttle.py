"""Sign-in throttling: guessing slows down, but no stranger can lock a user out."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

from tests.factories import PASSWORD, make_user
from webapp import create_app, login_throttle
from webapp.extensions import db
from webapp.login_throttle import DatabaseStore, Policy, RedisStore, account_key, address_key
from webapp.timeutil import utcnow

EMAIL = "agent@example.test"


def attempt(client, address: str, password: str, email: str = EMAIL):
    return client.post("/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by hand."""
    now = [utcnow()]
    monkeypatch.setattr(login_throttle, "utcnow", lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    return advance


def test_a_strangers_guesses_do_not_lock_the_user_out_of_their_browser(app, clock):
    make_user("support", email=EMAIL)
    agent = app.test_client()
    assert attempt(agent, "198.51.100.7", PASSWORD).status_code == 303  # remembered browser
    agent.post("/logout")

    stranger = app.test_client()
    for n in range(50):  # from many addresses, so that only the account counter grows
        response = attempt(stranger, f"203.0.113.{n}", "guess")
        assert response.status_code == 422

    assert "Too many failed sign-ins to this account" in text(response)
    signed_in = attempt(agent, "198.51.100.7", PASSWORD)
    assert signed_in.status_code == 303 and signed_in.location == "/"


def test_unknown_browsers_back_off_per_account_doubling_each_time(app, clock):
    make_user("support", email=EMAIL)
    stranger = app.test_client()
    for n in range(5):
        assert "Wrong email or password." in text(attempt(stranger, f"203.0.113.{n}", "guess"))
    assert "Wrong email or password." in text(attempt(stranger, "203.0.113.5", "guess"))
    for wait in (1, 2, 4, 8):
        refused = attempt(app.test_client(), "192.0.2.99", PASSWORD)  # a new browser too
        assert refused.status_code == 422
        assert f"Try again in {wait} second{'s' if wait > 1 else ''}, or use a browser " \
               "you have signed in with before." in text(refused)
        clock(wait)
        assert "Wrong email or password." in text(attempt(stranger, "203.0.113.9", "guess"))
    clock(16)
    # The owner on a new browser gets in once the wait is over; that clears the counter.
    assert attempt(app.test_client(), "192.0.2.99", PASSWORD).status_code == 303
    assert "Wrong email or password." in text(attempt(stranger, "203.0.113.10", "guess"))


def test_one_address_backs_off_after_ten_failures_whatever_the_account(app, clock):
    make_user("support", email=EMAIL)
    make_user("marketer", email="other@example.test")
    guesser = app.test_client()
    for n in range(11):
        response = attempt(guesser, "203.0.113.1", "guess", email=f"user{n}@example.test")
        assert "Wrong email or password." in text(response)
    refused = attempt(guesser, "203.0.113.1", PASSWORD)
    assert refused.status_code == 422
    assert "Too many failed sign-ins from your network. Try again in 1 second." in text(refused)
    # Other addresses are not slowed down, and the accounts are not locked.
    assert attempt(app.test_client(), "198.51.100.20", PASSWORD).status_code == 303
    clock(1)
    assert "Wrong email or password." in text(attempt(guesser, "203.0.113.1", "guess"))
    assert "Try again in 2 seconds." in text(attempt(guesser, "203.0.113.1", PASSWORD))


def test_ipv6_clients_count_per_64_network():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.4") == address_key("203.0.113.4") == "ip:203.0.113.4"
    assert account_key("Agent@Example.test ") == account_key(EMAIL)


def test_the_backoff_doubles_up_to_its_cap():
    policy = Policy(free=3, cap=900, memory=86400)
    assert [policy.delay(n) for n in range(1, 9)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert policy.delay(20) == 900 and policy.delay(10_000) == 900


def test_counters_are_shared_by_every_process_through_the_database(app, clock):
    """Two app instances (two gunicorn workers) see the same counters."""
    make_user("support", email=EMAIL)
    config = {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "TESTING",
                                               "WTF_CSRF_ENABLED")}
    other_worker = create_app({**config, "REDIS_URL": None})
    for n in range(6):
        worker = app if n % 2 else other_worker
        attempt(worker.test_client(), f"203.0.113.{n}", "guess")
    refused = attempt(other_worker.test_client(), "192.0.2.50", PASSWORD)
    assert "Too many failed sign-ins to this account" in text(refused)
    with other_worker.app_context():
        db.engine.dispose()


def test_failures_are_forgotten_after_a_day(app, clock):
    store, policy = DatabaseStore(), Policy(free=0, cap=900, memory=86400)
    assert store.hit("ip:x", policy) == 0
    assert store.hit("ip:x", policy) == pytest.approx(1, abs=0.01)
    clock(86401)
    assert store.hit("ip:x", policy) == 0  # counted afresh from one
    clock(1)
    assert store.hit("ip:x", policy) == 0


@pytest.fixture
def redis_store():
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/13) to test Redis")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    yield RedisStore(client)
    for key in client.scan_iter(login_throttle.REDIS_PREFIX + "test-*"):
        client.delete(key)


def test_the_redis_store_counts_backs_off_and_forgets(redis_store):
    key = f"test-{uuid.uuid4().hex}"
    policy = Policy(free=2, cap=900, memory=60)
    assert [redis_store.hit(key, policy) for _ in range(3)] == [0, 0, 0]
    wait = redis_store.hit(key, policy)  # the third failure set a 1 s wait
    assert 0 < wait <= 1
    redis_store.undo(key)
    redis_store.clear(key)
    assert redis_store.hit(key, policy) == 0
    assert 0 < redis_store.client.ttl(login_throttle.REDIS_PREFIX + key) <= 60


def test_sign_in_uses_redis_when_configured(app, redis_store, monkeypatch):
    make_user("support", email=EMAIL)
    app.config["REDIS_URL"] = "redis://configured"
    monkeypatch.setattr("webapp.jobs.redis_client", lambda url, timeout: redis_store.client)
    key = login_throttle.REDIS_PREFIX + address_key("203.0.113.77")
    try:
        attempt(app.test_client(), "203.0.113.77", "guess")
        assert redis_store.client.hget(key, "f") == b"1"
        assert db.session.get(login_throttle.LoginThrottle, address_key("203.0.113.77")) is None
    finally:
        redis_store.client.delete(key, login_throttle.REDIS_PREFIX + account_key(EMAIL))


def test_behind_a_proxy_the_forwarded_client_address_is_throttled(app, clock):
    from webapp import create_app as make

    proxied = make({key: app.config[key] for key in (
        "SQLALCHEMY_DATABASE_URI", "TESTING", "WTF_CSRF_ENABLED")} | {"PROXY_COUNT": 1})
    client = proxied.test_client()
    for n in range(11):
        client.post("/login", data={"email": f"u{n}@example.test", "password": "guess"},
                    headers={"X-Forwarded-For": "203.0.113.9"},
                    environ_base={"REMOTE_ADDR": "10.0.0.2"})
    make_user("support", email=EMAIL)
    # Another client behind the same proxy is not slowed down by the guesser.
    other = proxied.test_client().post("/login", data={"email": EMAIL, "password": PASSWORD},
                        headers={"X-Forwarded-For": "198.51.100.3"},
                        environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 303
    refused = client.post("/login", data={"email": EMAIL, "password": PASSWORD},
                          headers={"X-Forwarded-For": "203.0.113.9"},
                          environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert "from your network" in text(refused)
    with proxied.app_context():
        db.engine.dispose()


def test_parallel_attempts_cannot_slip_through_a_wait(app):
    """Each attempt is reserved atomically: of many at once, only those the policy allows
    (the free one, then the one that starts the wait) get through."""
    import threading

    policy = Policy(free=1, cap=900, memory=600)
    results: list[float] = []
    start = threading.Barrier(8)

    def try_once() -> None:
        with app.app_context():
            start.wait()
            results.append(DatabaseStore().hit("ip:race", policy))
            db.session.remove()

    threads = [threading.Thread(target=try_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r == 0 for r in results) == [False] * 6 + [True] * 2
