"""Shared fixtures: the app on SQLite (always) or PostgreSQL (TEST_DATABASE_URL), clients, login.

The schema is built once per run by the Alembic migrations (so they are tested too); each
test then starts from empty tables. On PostgreSQL every run uses a database of its own,
dropped at the end, so runs can repeat and run side by side.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.factories import PASSWORD
from webapp import create_app
from webapp.extensions import db

# The browser fixtures (live server, Playwright page, login_as) serve every area's tests.
pytest_plugins = ("tests.browser.fixtures",)


def _postgres_database(base_url: str):
    """Create a throw-away database next to TEST_DATABASE_URL's; returns (url, dropper)."""
    url = make_url(base_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"beacon_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Cheap Argon2 parameters in tests; production keeps the library's defaults."""
    from webapp import passwords

    passwords.use_parameters(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def database_url():
    """One database for the whole run, built by the migrations."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url, drop = _postgres_database(base)
    else:
        folder = tempfile.mkdtemp(prefix="beacon-test-")
        url, drop = f"sqlite:///{Path(folder) / 'test.sqlite3'}", lambda: None
    instance = tempfile.mkdtemp(prefix="beacon-instance-")
    os.environ["BEACON_INSTANCE_PATH"] = instance
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade(revision="heads")
            db.engine.dispose()
        yield url
    finally:
        drop()


def _empty_tables() -> None:
    # DELETE beats TRUNCATE on small PostgreSQL tables; tests never rely on id values.
    # catalog_version and history_meta: the migrations' one row each (kept up by triggers,
    # and when the history begins); row_history last, as the deletes above write to it.
    for table in reversed(db.metadata.sorted_tables):
        if table.name not in ("catalog_version", "history_meta", "row_history"):
            db.session.execute(table.delete())
    db.session.execute(db.metadata.tables["row_history"].delete())
    db.session.commit()


PUBLIC_TEST_ADDRESS = "93.184.215.14"  # any globally routable address; nothing connects to it


def fake_getaddrinfo(host, port, *args, **kwargs):
    """The tests' resolver: no real DNS. Names under .com/.example are public, localhost is
    loopback, an IP literal is itself, anything else does not exist."""
    import ipaddress
    import socket

    name = str(host).lower().rstrip(".")
    try:
        address = str(ipaddress.ip_address(name))
    except ValueError:
        if name == "localhost":
            address = "127.0.0.1"
        elif name.endswith((".com", ".example")):
            address = PUBLIC_TEST_ADDRESS
        else:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]


@pytest.fixture(autouse=True)
def _no_real_dns(monkeypatch):
    """Webhook URL checks resolve names with `fake_getaddrinfo`, never the network."""
    from webapp.services import webhook_addresses as addresses

    monkeypatch.setattr(addresses, "getaddrinfo", fake_getaddrinfo)


@pytest.fixture
def app(database_url):
    """A fresh app over empty tables."""
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "JOBS_SYNC": True,
        # The local webhook receiver of the tests listens on the loopback address.
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    })
    with app.app_context():
        _empty_tables()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app's commands."""
    return app.test_cli_runner()


class Auth:
    """Sign a test client in as a user of a given role."""

    def __init__(self, client):
        self._client = client

    def login(self, role: str = "admin", email: str | None = None):
        """Create a user with this role (if needed) and sign in; returns the user."""
        from tests.factories import make_user

        user = make_user(role=role, email=email or f"{role}@example.test")
        response = self._client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 303, response.get_data(as_text=True)
        return user

    def logout(self):
        """Sign out."""
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    """Login helper bound to the test client."""
    return Auth(client)
