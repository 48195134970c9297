"""Views of the members blueprint."""

from __future__ import annotations

from webapp.members import bp  # noqa: F401
