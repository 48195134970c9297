"""Per-token rate limiting: the budget is the token's, and going over it is a JSON:API 429."""

from __future__ import annotations

import os
import time

import pytest

from tests.api.conftest import ApiClient, errors_of
from webapp import create_app
from webapp.extensions import limiter
from webapp.services.tokens import create_token


@pytest.fixture
def make_limited(app, database_url):
    """Apps over the same database with the limiter on (in-memory counters, one per app)."""
    from webapp.extensions import db

    made = []

    def make(headers: bool = True, limit: str = "3 per minute"):
        limited = create_app({
            "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
            "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_HEADERS_ENABLED": headers, "API_RATE_LIMIT": limit,
        })
        made.append(limited)
        return limited

    yield make
    for limited in made:
        with limited.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(params=[True, False], ids=["limit-headers", "no-limit-headers"])
def limited_app(make_limited, request):
    """The same database, with the limiter on and a budget of 3 requests a minute."""
    return make_limited(headers=request.param)


def test_429_with_retry_after_per_token(limited_app, jsonapi_validator):
    with limited_app.app_context():
        _, first = create_token("first", "support")
        _, second = create_token("second", "support")
    client = limited_app.test_client()
    api = ApiClient(client, first, jsonapi_validator)
    statuses = [api.get("/segments").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = api.get("/members")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    error = errors_of(refused)[0]
    assert error["code"] == "rate_limited" and "3 per 1 minute" in error["detail"]
    other = ApiClient(client, second, jsonapi_validator)
    assert other.get("/segments").status_code == 200


def test_limit_headers_count_down(make_limited, jsonapi_validator):
    limited = make_limited(limit="5 per minute")
    with limited.app_context():
        _, raw = create_token("counted", "support")
    api = ApiClient(limited.test_client(), raw, jsonapi_validator)
    before = time.time()
    responses = [api.get("/segments") for _ in range(6)]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == \
        ["4", "3", "2", "1", "0", "0"]
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {"5"}
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in responses}
    assert len(resets) == 1 and before <= resets.pop() <= time.time() + 61
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    assert "Retry-After" not in responses[0].headers  # only a refusal says when to retry


def test_no_limit_headers_when_disabled(make_limited, jsonapi_validator):
    limited = make_limited(headers=False)
    with limited.app_context():
        _, raw = create_token("quiet", "support")
    response = ApiClient(limited.test_client(), raw, jsonapi_validator).get("/segments")
    assert response.status_code == 200
    assert not [h for h in response.headers.keys() if h.startswith("X-RateLimit")]


def test_window_resets_and_budget_is_per_app_storage(make_limited, jsonapi_validator):
    limited = make_limited(limit="2 per second")
    with limited.app_context():
        _, raw = create_token("short", "support")
    api = ApiClient(limited.test_client(), raw, jsonapi_validator)
    assert [api.get("/segments").status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(1.1)
    assert api.get("/segments").status_code == 200
    # A second app (another worker process) with in-memory counters has its own budget.
    other = make_limited(limit="2 per second")
    assert ApiClient(other.test_client(), raw, jsonapi_validator).get("/segments") \
        .status_code == 200


def test_unauthenticated_requests_are_refused_before_counting(make_limited, jsonapi_validator):
    limited = make_limited(limit="1 per minute")
    client = limited.test_client()
    for _ in range(3):
        response = client.get("/api/v1/segments", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert "X-RateLimit-Remaining" not in response.headers
    with limited.app_context():
        _, raw = create_token("fresh", "support")
    assert ApiClient(client, raw, jsonapi_validator).get("/segments").status_code == 200


def test_the_disabled_limiter_counts_nothing(api):
    assert all(api.get("/segments").status_code == 200 for _ in range(5))
    assert "X-RateLimit-Remaining" not in api.get("/segments").headers


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"),
                    reason="set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/13) to test Redis")
def test_counters_in_redis_are_shared_by_every_process(make_limited, jsonapi_validator):
    url = os.environ["TEST_REDIS_URL"]
    first = make_limited(limit="2 per minute")
    second = make_limited(limit="2 per minute")
    for limited in (first, second):
        limited.config["RATELIMIT_STORAGE_URI"] = url
        limiter.init_app(limited)
    limiter.reset(first)  # a throw-away Redis database: forget earlier runs' counters
    with first.app_context():
        _, raw = create_token("shared", "support")
    one = ApiClient(first.test_client(), raw, jsonapi_validator)
    two = ApiClient(second.test_client(), raw, jsonapi_validator)
    assert one.get("/segments").headers["X-RateLimit-Remaining"] == "1"
    assert two.get("/segments").headers["X-RateLimit-Remaining"] == "0"
    refused = one.get("/segments")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    limiter.reset(first)


def test_the_window_reset_is_asked_of_the_storage_at_most_once_a_window(
        make_limited, jsonapi_validator, monkeypatch):
    from webapp.ratelimit import EXTENSION

    limited = make_limited(limit="100 per minute")
    with limited.app_context():
        _, token = create_token("counted", "support")
    storage = limited.extensions[EXTENSION].storage
    asked = []
    real = storage.get_expiry
    monkeypatch.setattr(storage, "get_expiry", lambda key: asked.append(key) or real(key))
    api = ApiClient(limited.test_client(), token, jsonapi_validator)
    resets = {api.get("/segments").headers["X-RateLimit-Reset"] for _ in range(5)}
    # The first request opened the window (its reset is known); the others reuse it.
    assert asked == [] and len(resets) == 1
    assert 0 < int(resets.pop()) - time.time() <= 61

    # A process that has not learnt the reset (as if another worker) asks once, then knows.
    limited.extensions[EXTENSION].resets.clear()
    for _ in range(3):
        api.get("/segments")
    assert len(asked) == 1
