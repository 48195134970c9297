"""One access mechanism for every route: each view declares who may use it.

A view without a declaration is refused (403) for everyone, so a new route that forgets its
check fails the route x role test instead of leaking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Request, abort, current_app, g, request
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


def bearer_credentials(req: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    header = req.headers.get("Authorization")
    if header is None or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip()


def request_role() -> str | None:
    """Who makes this request, for the access check.

    An API request that presents a bearer token is that token's alone (valid, or nobody: a
    signed-in session does not stand in for a bad token, and is not even read); other API
    requests, like the dashboard's, are the signed-in user's.
    """
    if request.path.startswith("/api/"):
        from webapp.services.tokens import load_bearer_token

        token = load_bearer_token()
        if token is not None:
            return token.role
        if bearer_credentials(request) is not None:
            return None
    return current_user.role if current_user.is_authenticated else None


def enforce() -> None:
    """before_request hook: refuse the request unless the view's declared level is met."""
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static":
        return
    level = getattr(current_app.view_functions.get(endpoint), "access_level", None)
    if level is None:
        abort(403)
    if level == "public":
        return
    role = request_role()
    if role is None:
        abort(401)
    if not role_can(role, level):
        abort(403)
