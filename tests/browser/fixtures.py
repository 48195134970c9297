"""Browser fixtures, a pytest plugin loaded by tests/conftest.py for every area.

A live server on a free port and Playwright driving Debian's Chromium.
Chromium comes from Debian (`/usr/bin/chromium`); when it is missing the browser tests are
skipped on a developer machine and fail in CI (CI=true), so CI cannot pass without them.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD, make_user
from webapp import create_app
from webapp.extensions import db

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


_shared: dict = {"users": 0}


def _start_browser():
    """One Playwright driver and Chromium for the whole run, however many areas ask for it."""
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        manager = sync_playwright().start()
        _shared["manager"] = manager
        _shared["browser"] = manager.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
    _shared["users"] += 1
    return _shared["browser"]


def _stop_browser() -> None:
    _shared["users"] -= 1
    if _shared["users"] == 0 and "browser" in _shared:
        _shared.pop("browser").close()
        _shared.pop("manager").stop()


@pytest.fixture(scope="session")
def _playwright():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI but {CHROMIUM} is missing")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    yield _start_browser()
    _stop_browser()


@pytest.fixture
def live_server(app):
    """Serve a second app instance over the same (emptied) database; yields its base URL."""
    server_app = create_app({
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "TESTING": True, "RATELIMIT_ENABLED": False, "JOBS_SYNC": True,
        "WEBHOOK_ALLOWED_HOSTS": app.config["WEBHOOK_ALLOWED_HOSTS"],
    })
    server = make_server("127.0.0.1", 0, server_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    with server_app.app_context():
        # A request Chromium left running when its context closed may still hold a pooled
        # connection: wait for it, since a connection checked in after `dispose` would stay
        # open in the discarded pool until the garbage collector found it (psycopg's
        # ResourceWarning, failing whichever test runs then).
        pool = db.engine.pool
        deadline = time.monotonic() + 30
        while pool.checkedout() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pool.checkedout(), "a request of the live server kept its connection"
        db.engine.dispose()


@pytest.fixture
def page(_playwright, live_server, request):
    """A fresh browser page; a screenshot is kept in test-artifacts/ when the test fails."""
    context = _playwright.new_context(base_url=live_server, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome so `page` can screenshot failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def login_as(page):
    """Sign in through the login form as a new user with the given role; returns the user."""

    def login(role: str, email: str | None = None):
        user = make_user(role=role, email=email or f"{role}.browser@example.test",
                         name=f"{role.capitalize()} Tester")
        page.goto("/login")
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/")
        return user

    return login
