"""Views of the uploads blueprint."""

from __future__ import annotations

from webapp.uploads import bp  # noqa: F401
