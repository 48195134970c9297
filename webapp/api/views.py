"""Views of the api blueprint."""

from __future__ import annotations

from webapp.api import bp  # noqa: F401
