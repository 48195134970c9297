"""Fixtures of the sign-in and session tests."""

from __future__ import annotations

import pytest

from webapp import create_app
from webapp.extensions import db


@pytest.fixture
def app(app):
    """A second app over the same database, whose requests each get their own app context.

    (The `app` fixture's context stays pushed during a test, so its test clients' requests
    would share `g`, where Flask-Login keeps the signed-in user between requests.)
    """
    served = create_app({key: app.config[key] for key in (
        "SQLALCHEMY_DATABASE_URI", "TESTING", "WTF_CSRF_ENABLED", "RATELIMIT_ENABLED",
        "JOBS_SYNC")})
    yield served
    with served.app_context():
        db.engine.dispose()
