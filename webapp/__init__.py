"""Beacon: decides and explains which loyalty members see which offers and rewards."""

from __future__ import annotations

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
    "auth", "dashboard", "admin", "segments", "uploads", "overrides", "members",
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
