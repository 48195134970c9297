"""The one place that decides between a full page and an htmx fragment."""

from __future__ import annotations

from typing import Any

from flask import request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    """True for an htmx request that is not a history restore (those get full pages)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def render(template: str, block: str | None = None, **context: Any) -> str:
    """Render the named block alone for htmx, the whole page otherwise."""
    from flask import render_template

    if block and is_htmx():
        return render_block(template, block, **context)
    return render_template(template, **context)


def add_vary(response):
    """after_request: fragments and pages differ by HX-Request, so caches must know."""
    response.vary.add("HX-Request")
    return response
