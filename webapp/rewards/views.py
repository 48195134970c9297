"""Views of the rewards blueprint."""

from __future__ import annotations

from webapp.rewards import bp  # noqa: F401
