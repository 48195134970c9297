"""Signed-cookie sessions for people; none for machines presenting an API token.

A person's session also carries the generation of that user's sessions
(`users.session_version`) it was signed in with; the user loader accepts the session only
while the user's generation is still the same. Signing out, a password change and an
admin deactivating the user raise the generation, which ends every session of that user on
the server: a copy of the cookie taken before stops working too.

A request to /api/ with `Authorization: Bearer ...` is authenticated by its token alone
(webapp.access), so its session cookie is neither read nor written: it gets an empty
`DetachedSession` that Flask never saves (no Set-Cookie, no `Vary: Cookie`). Every other
request keeps Flask's signed-cookie session; the signing serializer is built once per key
set instead of on every request, and a request without a session cookie skips it.
"""

from __future__ import annotations

from flask import Flask, Request, session
from flask.sessions import NullSession, SecureCookieSession, SecureCookieSessionInterface
from flask_login import login_user
from itsdangerous import URLSafeTimedSerializer

from webapp.access import bearer_credentials

SESSION_VERSION_KEY = "_sv"


def start_session(user) -> None:
    """Sign the user in to this browser, bound to the user's current session generation."""
    login_user(user)
    session[SESSION_VERSION_KEY] = user.session_version


def session_is_current(user) -> bool:
    """Whether this request's session was signed in with the user's current generation."""
    return session.get(SESSION_VERSION_KEY) == user.session_version


class DetachedSession(SecureCookieSession):
    """The session of a bearer-token API request: empty, and never stored in a cookie.

    Writes (an extension may still set a key) last for the request only.
    """


class BeaconSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, detached for bearer API requests."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (app.secret_key, *app.config["SECRET_KEY_FALLBACKS"])
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializers = {keys: serializer}  # one key set at a time
        return serializer

    def is_null_session(self, obj: object) -> bool:
        """Detached sessions are never saved (nor are Flask's null sessions)."""
        return isinstance(obj, DetachedSession | NullSession)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/api/") and bearer_credentials(request) is not None:
            return DetachedSession()
        if not app.secret_key:
            return None
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
