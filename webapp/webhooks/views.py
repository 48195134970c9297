"""Views of the webhooks blueprint."""

from __future__ import annotations

from webapp.webhooks import bp  # noqa: F401
