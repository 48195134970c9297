"""Views of the overrides blueprint."""

from __future__ import annotations

from webapp.overrides import bp  # noqa: F401
