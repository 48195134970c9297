"""Jinja globals and filters shared by every template."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask, current_app, url_for
from flask_login import current_user

from webapp.access import can, role_can
from webapp.timeutil import utcnow

# (endpoint, label, level, section); entries whose endpoint is not registered are not shown.
NAVIGATION = (
    ("dashboard.index", "Overview", "read", "main"),
    ("members.index", "Members", "read", "main"),
    ("segments.index", "Segments", "read", "main"),
    ("activities.imports", "Activity imports", "read", "main"),
    ("offers.index", "Offers", "read", "main"),
    ("rewards.index", "Rewards", "read", "main"),
    ("overrides.index", "Overrides", "read", "main"),
    ("api.docs", "API reference", "read", "main"),
    ("admin.users", "Users", "admin", "admin"),
    ("admin.tokens", "API tokens", "admin", "admin"),
    ("admin.attributes", "Member fields", "admin", "admin"),
    ("webhooks.index", "Webhooks", "admin", "admin"),
    ("admin.audit", "Audit log", "admin", "admin"),
)


def navigation() -> list[dict]:
    """The navigation entries the signed-in user may use."""
    if not current_user.is_authenticated:
        return []
    items = []
    for endpoint, label, level, section in NAVIGATION:
        if endpoint in current_app.view_functions and role_can(current_user.role, level):
            items.append({"endpoint": endpoint, "label": label, "section": section,
                          "url": url_for(endpoint)})
    return items


def number(value) -> str:
    """1234567 -> '1,234,567'."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def when(value) -> str:
    """A datetime as '2026-11-22 09:42 UTC'."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def ago(value) -> str:
    """A past datetime as '5 minutes ago'."""
    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def has_endpoint(endpoint: str) -> bool:
    """Whether a route exists (lets shared templates link to optional areas)."""
    return endpoint in current_app.view_functions


def register(app: Flask) -> None:
    """Install the globals and filters."""
    app.jinja_env.globals.update(can=can, navigation=navigation, has_endpoint=has_endpoint)
    app.jinja_env.filters.update(number=number, when=when, ago=ago)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
