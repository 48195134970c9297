"""JSON:API error documents for every failure on an API route.

Views raise `ApiError` (one or many error objects, each naming the offending member of the
request with `source.pointer` or the query parameter with `source.parameter`). The blueprint's
handlers turn it, and every HTTP error raised under /api/v1 (401, 403, 404, 405, 413, 429...),
into `{"errors": [...]}` with the media type application/vnd.api+json, never an HTML page.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, render_template, request
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from webapp.api import bp
from webapp.errors import TITLES, Conflict, handle_http_error
from webapp.extensions import db
from webapp.services.errors import BlockedHost

MEDIA_TYPE = "application/vnd.api+json"


def error_object(status: int, code: str, detail: str, *, title: str | None = None,
                 pointer: str | None = None, parameter: str | None = None,
                 meta: dict | None = None) -> dict[str, Any]:
    """One JSON:API error object."""
    error: dict[str, Any] = {"status": str(status), "code": code,
                             "title": title or TITLES.get(status, "Error"), "detail": detail}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    elif parameter is not None:
        error["source"] = {"parameter": parameter}
    if meta:
        error["meta"] = meta
    return error


class ApiError(Exception):
    """A refused API request: its status and one or more JSON:API error objects."""

    def __init__(self, status: int, code: str = "", detail: str = "", *,
                 title: str | None = None, pointer: str | None = None,
                 parameter: str | None = None, meta: dict | None = None,
                 errors: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail or code)
        self.status = status
        self.errors = errors or [error_object(status, code, detail, title=title,
                                              pointer=pointer, parameter=parameter, meta=meta)]
        self.headers = headers or {}


def escape(token: object) -> str:
    """One JSON pointer reference token (RFC 6901: ~ as ~0, / as ~1)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_for(key: str, base: str = "/data/attributes") -> str:
    """A JSON pointer for a service error key such as `include[2]` or `configuration.segments`."""
    parts: list[str] = []
    for piece in key.replace("]", "").replace("[", ".").split("."):
        if piece:
            parts.append(escape(piece))
    return base + "".join("/" + p for p in parts)


def validation_error(errors: dict[str, str], base: str = "/data/attributes",
                     status: int = 422, code: str = "invalid_attribute") -> ApiError:
    """An ApiError with one error object per offending attribute of a service's `.errors`.

    A taken unique value (a Conflict message) is a 409 error object; when every problem is one,
    the answer is 409 as well.
    """
    objects = [error_object(409, "conflict", message, title="Conflict",
                            pointer=pointer_for(key, base) if key else base)
               if isinstance(message, Conflict) else
               error_object(status, "blocked_host" if isinstance(message, BlockedHost)
                            else code, message, title="Invalid attribute",
                            pointer=pointer_for(key, base) if key else base)
               for key, message in errors.items()]
    if not objects:
        objects = [error_object(status, code, "The request was refused.", pointer=base)]
    elif all(o["status"] == "409" for o in objects):
        status = 409
    return ApiError(status, errors=objects)


def error_response(status: int, errors: list[dict], headers: dict[str, str] | None = None
                   ) -> Response:
    """The JSON:API error document as a response."""
    response = Response(json.dumps({"errors": errors}), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.errorhandler(ApiError)
def handle_api_error(error: ApiError):
    """Render a refused request; whatever it started is rolled back."""
    db.session.rollback()
    return error_response(error.status, error.errors, error.headers)


@bp.errorhandler(IntegrityError)
def handle_integrity_error(error: IntegrityError):
    """A uniqueness or reference conflict found by the database: 409, nothing saved."""
    db.session.rollback()
    current_app.logger.info("API integrity conflict: %s", error.orig)
    return error_response(409, [error_object(
        409, "conflict", "The change conflicts with existing data (a unique value is already "
        "taken, or a referenced record is in use). Nothing was saved.", pointer="/data")])


@bp.errorhandler(OperationalError)
def handle_operational_error(error: OperationalError):
    """The database is busy or locked: ask the client to retry (503), nothing saved."""
    db.session.rollback()
    current_app.logger.warning("API database busy: %s", error.orig)
    return error_response(503, [error_object(
        503, "database_busy", "The database is busy; retry the request in a moment.",
        title="Service unavailable")], {"Retry-After": "1"})


@bp.errorhandler(HTTPException)
def handle_http(error: HTTPException):
    """Every HTTP error on an API route as a JSON:API error document."""
    status = error.code or 500
    if request.endpoint == "api.docs" and status in (401, 403):
        # The reference page is for people: an HTML page saying how to get in.
        return render_template("api/signin.html", detail=error.description), status
    return _http_error_response(error)


def _http_error_response(error: HTTPException) -> Response:
    status = error.code or 500
    title = TITLES.get(status, error.name)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "too_large", 429: "rate_limited"}.get(
        status, title.lower().replace(" ", "_"))
    detail = error.description or title
    if status == 401:
        detail = ("Send a valid API token: Authorization: Bearer <token> "
                  "(admins create tokens under Administration → API tokens).")
    elif status == 403:
        detail = "This token's role may not use this route."
    elif status == 429:
        detail = f"Rate limit exceeded ({error.description}); retry after the Retry-After delay."
    headers: dict[str, str] = {}
    for name, value in error.get_headers():
        if name in ("Retry-After", "Allow"):
            headers[name] = value
    if status == 429:
        # The rate limiter gives the exact delay; any other 429 still says when to retry.
        headers.setdefault("Retry-After", "60")
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="beacon"'
    return error_response(status, [error_object(status, code, detail, title=title)], headers)


@bp.app_errorhandler(MethodNotAllowed)
def handle_method_not_allowed(error: MethodNotAllowed):
    """405: routing fails before a blueprint is known, so this one is app-wide."""
    if request.path.startswith("/api/"):
        return _http_error_response(error)
    return handle_http_error(error)
