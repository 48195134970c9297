"""Beacon: decides and explains which loyalty members see which offers and rewards."""

from __future__ import annotations

import fcntl
import importlib
import os
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from webapp import access, config, errors
from webapp.extensions import csrf, db, limiter, login_manager, migrate
from webapp.sessions import BeaconSessionInterface, session_is_current

ROOT = Path(__file__).resolve().parent.parent

BLUEPRINTS = (
    "auth", "dashboard", "admin", "segments", "uploads", "activities", "overrides", "members",
    "offers", "rewards", "webhooks", "api",
)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: config, extensions, blueprints, CLI and error handlers."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("BEACON_INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.session_interface = BeaconSessionInterface()
    app.config.from_mapping(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          config.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))

    # The access check runs before anything else, CSRF included: refuse first, then validate.
    app.before_request(access.enforce)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"

    from webapp.models import User

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # A session from before a sign-out, password change or deactivation is no session.
        user = db.session.get(User, int(user_id))
        if user is None or not user.active or not session_is_current(user):
            return None
        return user

    for name in BLUEPRINTS:
        module = importlib.import_module(f"webapp.{name}")
        app.register_blueprint(module.bp)
        if name == "api":
            csrf.exempt(module.bp)

    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)

    app.after_request(_security_headers)
    errors.register(app)

    from webapp import cli, templating

    cli.register(app)
    templating.register(app)
    return app


SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def _security_headers(response):
    """Every response: Vary on HX-Request and the security headers (unless a view set its own).

    One look at the headers present, then plain appends: parsing and rewriting Vary and
    setdefault's scans were a measurable part of a cheap API request.
    """
    headers = response.headers
    present = {name.lower() for name, _ in headers}
    if "vary" in present:
        response.vary.add("HX-Request")
    else:
        headers.add("Vary", "HX-Request")
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    return response


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: WAL for concurrent readers, foreign keys enforced."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_writer_queue(connection, cursor, statement, parameters, context, executemany) -> None:
    """SQLite: a transaction's first write waits its turn in the writers' queue first.

    SQLite has one writer at a time. The driver begins a transaction just before the first
    INSERT/UPDATE/DELETE (reads before it run outside one, concurrently), and that write
    takes the database's write lock. Queueing for an flock beside the database file first
    (see _WriterQueue) means that write finds the lock free, so no writer waits in SQLite's
    busy handler, whose growing sleeps let the lock sit idle under contention (eight
    clients wrote five times slower than one). The membership writers take their turn
    before reading what they change (webapp/services/membership.py, lock_segments). Writes to this
    connection's temporary tables (upload staging) do not queue; nor does a side connection
    that opts out with the `sqlite_deferred` execution option.
    """
    if connection.dialect.name != "sqlite" or connection.info.get(_WriterQueue.KEY):
        return
    if statement.lstrip()[:7].upper() not in ("INSERT ", "UPDATE ", "DELETE ", "REPLACE"):
        return
    if connection.connection.dbapi_connection.in_transaction \
            or connection.get_execution_options().get("sqlite_deferred"):
        return
    table = getattr(getattr(getattr(context, "compiled", None), "statement", None), "table",
                    None)
    if table is not None and "TEMPORARY" in getattr(table, "_prefixes", ()):
        return
    _WriterQueue.acquire(connection)


class _WriterQueue:
    """SQLite: writers of one database queue on an exclusive flock beside its file.

    A waiter polls every millisecond (every gunicorn worker and job alike), so the lock
    changes hands within a millisecond of its release; after the busy timeout (30 s) it
    gives up with "database is locked", as SQLite would. Held per database connection from
    its first write until COMMIT or ROLLBACK.
    """

    KEY = "beacon_sqlite_writer"
    TIMEOUT = 30.0

    @classmethod
    def acquire(cls, connection) -> None:
        import sqlite3
        import time

        database = connection.engine.url.database
        if not database or database == ":memory:":
            return
        handle = open(f"{database}-writers.lock", "a")  # noqa: SIM115 (held past this call)
        deadline = time.monotonic() + cls.TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(0.001)
        connection.info[cls.KEY] = handle

    @classmethod
    def release(cls, connection) -> None:
        handle = connection.info.pop(cls.KEY, None)
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _sqlite_end(connection) -> None:
    """Let the next SQLite writer in (see _WriterQueue)."""
    if connection.dialect.name == "sqlite":
        _WriterQueue.release(connection)
