"""Views of the segments blueprint."""

from __future__ import annotations

from webapp.segments import bp  # noqa: F401
