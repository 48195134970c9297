"""Error pages: full pages, htmx fragments, or JSON:API error documents under /api/."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.htmx import is_htmx
from webapp.services.errors import Conflict  # noqa: F401  (re-exported for the API)

TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Unprocessable",
    429: "Too many requests",
    500: "Something went wrong",
}


def api_error(status: int, code: str, title: str, detail: str,
              pointer: str | None = None, parameter: str | None = None):
    """A JSON:API error response with one error object."""
    error: dict = {"status": str(status), "code": code, "title": title, "detail": detail}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    elif parameter is not None:
        error["source"] = {"parameter": parameter}
    response = jsonify({"errors": [error]})
    response.status_code = status
    response.mimetype = "application/vnd.api+json"
    return response


def handle_http_error(error: HTTPException):
    """Render an HTTP error for whoever asked: API client, htmx or browser."""
    status = error.code or 500
    title = TITLES.get(status, error.name)
    if request.path.startswith("/api/"):
        response = api_error(status, title.lower().replace(" ", "_"), title,
                             error.description or title)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="beacon"'
        for header in ("Retry-After",):
            if error.get_headers() and dict(error.get_headers()).get(header):
                response.headers[header] = dict(error.get_headers())[header]
        return response
    if status == 401 and not is_htmx():
        from flask import redirect, url_for

        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, title=title,
                           detail=error.description), status


def handle_unexpected(error: Exception):
    """Log the failure and answer 500 without a stack trace."""
    from flask import current_app

    current_app.logger.exception("unhandled error", exc_info=error)
    return handle_http_error(InternalServerError())


def register(app: Flask) -> None:
    """Wire the error handlers into the app."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
