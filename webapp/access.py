"""One access mechanism for every route: each view declares who may use it.

A view without a declaration is refused (403) for everyone, so a new route that forgets its
check fails the route x role test instead of leaking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, current_app, g, request
from flask_login import current_user

F = TypeVar("F", bound=Callable)

LEVELS = {"public": 0, "read": 1, "write": 2, "admin": 3}
ROLE_LEVEL = {"support": 1, "marketer": 2, "admin": 3}


def access(level: str) -> Callable[[F], F]:
    """Declare the least role level a view needs: public, read, write or admin."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level!r}")

    def decorate(view: F) -> F:
        view.access_level = level  # type: ignore[attr-defined]
        return view

    return decorate


def role_can(role: str | None, level: str) -> bool:
    """Whether a role reaches an access level."""
    if level == "public":
        return True
    return role is not None and ROLE_LEVEL.get(role, 0) >= LEVELS[level]


def current_role() -> str | None:
    """The role of whoever makes this request: an API token's or the signed-in user's."""
    token = getattr(g, "api_token", None)
    if token is not None:
        return token.role
    if current_user.is_authenticated:
        return current_user.role
    return None


def can(level: str) -> bool:
    """Template helper: may the current principal act at this level?"""
    return role_can(current_role(), level)


def enforce() -> None:
    """before_request hook: refuse the request unless the view's declared level is met."""
    if request.endpoint is None or request.endpoint == "static":
        return
    view = current_app.view_functions.get(request.endpoint)
    level = getattr(view, "access_level", None)
    if level is None:
        abort(403)
    if level == "public":
        return
    if request.path.startswith("/api/"):
        from webapp.tokens import load_bearer_token

        load_bearer_token()
    if current_role() is None:
        abort(401)
    if not role_can(current_role(), level):
        abort(403)
