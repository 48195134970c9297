"""One voice for the messages people read on forms: "Name is required.", "Name must be at
most 200 characters (10,000 given).", and the form validators that say them.

The validators check on the server only: `MaxLength` deliberately sets no `maxlength`
attribute, because a browser silently cuts pasted text at that length and the person never
learns that part of it was dropped.
"""

from __future__ import annotations

from typing import Any

from wtforms.validators import DataRequired, InputRequired, StopValidation


def required(label: str) -> str:
    """'<Label> is required.'"""
    return f"{label} is required."


def too_long(label: str, limit: int, given: int | None = None) -> str:
    """'<Label> must be at most <limit> characters (<given> given).'"""
    told = f" ({given:,} given)" if given is not None else ""
    return f"{label} must be at most {limit:,} characters{told}."


def too_short(label: str, limit: int) -> str:
    """'<Label> must be at least <limit> characters.'"""
    return f"{label} must be at least {limit:,} characters."


def sentence(label: str, rest: str) -> str:
    """A field label and a lower-case service fragment as one sentence ('Expire at must be
    after the publish time.'); a message that is already a sentence is kept as it is."""
    rest = rest.strip()
    if not rest or rest[0].isupper():
        return rest if not rest or rest.endswith((".", "?", "!")) else rest + "."
    return f"{label} {rest.rstrip('.')}."


def _label(field: Any) -> str:
    return field.label.text if field.label is not None else field.name


class Required(DataRequired):
    """DataRequired saying '<Label> is required.' (unless given another message)."""

    def __call__(self, form: Any, field: Any) -> None:
        """Stop with the house message when the field is empty or only spaces."""
        data = field.data
        if not data or isinstance(data, str) and not data.strip():
            field.errors[:] = []
            raise StopValidation(self.message or required(_label(field)))


class Present(InputRequired):
    """InputRequired saying '<Label> is required.' (for numbers, where 0 is an answer)."""

    def __call__(self, form: Any, field: Any) -> None:
        """Stop with the house message when nothing was typed."""
        if not field.raw_data or not str(field.raw_data[0]).strip():
            field.errors[:] = []
            raise StopValidation(self.message or required(_label(field)))


class MaxLength:
    """At most `limit` characters, refused on the server with a message naming the limit."""

    def __init__(self, limit: int, label: str | None = None) -> None:
        self.limit, self.label = limit, label

    def __call__(self, form: Any, field: Any) -> None:
        """Refuse a longer value with '<Label> must be at most N characters (M given).'"""
        value = field.data if isinstance(field.data, str) else ""
        if len(value) > self.limit:
            raise StopValidation(too_long(self.label or _label(field), self.limit,
                                          len(value)))


class MinLength:
    """At least `limit` characters (an empty value is left to Required)."""

    def __init__(self, limit: int, label: str | None = None) -> None:
        self.limit, self.label = limit, label

    def __call__(self, form: Any, field: Any) -> None:
        """Refuse a shorter value with '<Label> must be at least N characters.'"""
        value = field.data if isinstance(field.data, str) else ""
        if value and len(value) < self.limit:
            raise StopValidation(too_short(self.label or _label(field), self.limit))
