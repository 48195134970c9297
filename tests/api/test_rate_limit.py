"""Per-token rate limiting: the budget is the token's, and going over it is a JSON:API 429."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient, errors_of
from webapp import create_app
from webapp.tokens import create_token


@pytest.fixture(params=[True, False], ids=["limit-headers", "no-limit-headers"])
def limited_app(app, database_url, request):
    """The same database, with the limiter on and a budget of 3 requests a minute."""
    limited = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
        "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": request.param, "API_RATE_LIMIT": "3 per minute",
    })
    yield limited
    from webapp.extensions import db, limiter

    with limited.app_context():
        db.session.remove()
        db.engine.dispose()
    limiter.reset()
    limiter.init_app(app)  # the limiter is shared: hand it back to the (unlimited) test app


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
