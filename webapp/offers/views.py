"""Views of the offers blueprint."""

from __future__ import annotations

from webapp.offers import bp  # noqa: F401
