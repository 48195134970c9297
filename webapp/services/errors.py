"""Errors of the service layer that the dashboard and the API both understand."""

from __future__ import annotations


class Conflict(str):
    """A validation message saying a unique value is already taken (409 in the API, as its
    OpenAPI document says, rather than 422)."""


class BlockedHost(str):
    """A validation message refusing a webhook URL whose host does not resolve, or resolves to
    an internal address (the API's code `blocked_host`: what DNS answers decides, not the
    request's shape)."""


class ServiceError(ValueError):
    """A refused service call; `.errors` maps each field (or "" for the whole request) to a
    message for the person, and `.status` is the HTTP status the API answers with.

    Field keys are attribute names or paths (`configuration.minimum_age`, `include[2]`); forms
    put each message by the field of that name and the API makes a pointer of it, so neither
    has to guess the field from the words. `.words` holds, by the same keys, the dashboard's
    sentence where it differs from the API's message (no internal names, a person's verbs:
    'Segment #7 no longer exists; choose another.'); forms read :meth:`words_for`.
    """

    def __init__(self, errors: dict[str, str] | str, status: int = 422, *,
                 text: str | None = None, words: dict[str, str] | None = None) -> None:
        self.errors = {"": errors} if isinstance(errors, str) else dict(errors)
        self.words = dict(words or {})
        self.status = status
        super().__init__(text if text is not None else "; ".join(
            f"{k}: {v}" if k else v for k, v in self.errors.items()))

    def words_for(self, key: str) -> str:
        """The message for one field as the dashboard shows it."""
        return self.words.get(key) or self.errors[key]
