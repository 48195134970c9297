"""Errors of the service layer that the dashboard and the API both understand."""

from __future__ import annotations


class Conflict(str):
    """A validation message saying a unique value is already taken (409 in the API, as its
    OpenAPI document says, rather than 422)."""


class BlockedHost(str):
    """A validation message refusing a webhook URL whose host does not resolve, or resolves to
    an internal address (the API's code `blocked_host`: what DNS answers decides, not the
    request's shape)."""
