"""Form fields for whole numbers and ids that give one clear message each and never let a
number beyond 64 bits reach the database (offers, rewards and the member what-if use them)."""

from __future__ import annotations

import re
from typing import Any

from flask import abort
from wtforms import IntegerField, SelectMultipleField
from wtforms.validators import StopValidation

from webapp.extensions import db

MAX_INT = 2**63 - 1
_WHOLE = re.compile(r"[+-]?\d+")


def parse_whole(text: str) -> int | None:
    """The text as a whole number (digits with an optional sign), or None when it is not."""
    text = text.strip()
    if not _WHOLE.fullmatch(text) or len(text) > 4300:
        return None
    return int(text)


def in_id_range(value: int) -> bool:
    """Whether a database id can be this number (a positive 64-bit integer)."""
    return 0 < value <= MAX_INT


def get_or_404(model: Any, item_id: int) -> Any:
    """The row with this id, or a 404 (ids beyond 64 bits too, instead of a database error)."""
    if not in_id_range(item_id):
        abort(404)
    return db.session.get(model, item_id) or abort(404)


def page_number(text: str | None, limit: int = 10**12) -> int:
    """A list's page number from the address (1 when missing or not a page; at most `limit`,
    so the row offset always fits in 64 bits)."""
    value = parse_whole(text or "")
    return 1 if value is None or value < 1 else min(value, limit)


class WholeNumberField(IntegerField):
    """A whole number within [minimum, maximum]: exactly one message when the input is not a
    whole number, is too large or is too small (an empty input is left to Optional /
    InputRequired)."""

    def __init__(self, label: str | None = None, validators: Any = None, *,
                 minimum: int = 0, maximum: int = MAX_INT, noun: str = "The number",
                 range_message: str | None = None, example: str = "250", **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum, self.noun = minimum, maximum, noun
        self.example = example
        self.range_message = range_message

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Keep the number, or None when the text is empty or not a whole number."""
        self.data = None
        if valuelist and str(valuelist[0]).strip():
            self.data = parse_whole(str(valuelist[0]))

    def pre_validate(self, form: Any) -> None:
        """One message: not a whole number, too large (naming the limit) or too small."""
        if not self.raw_data or not str(self.raw_data[0]).strip():
            return
        if self.data is None:
            raise StopValidation(
                f"{self.noun} must be a whole number (digits only, e.g. {self.example}).")
        if self.data > self.maximum:
            raise StopValidation(self.range_message or
                                 f"{self.noun} must be at most {self.maximum:,}.")
        if self.data < self.minimum:
            raise StopValidation(self.range_message or
                                 f"{self.noun} must be {self.minimum:,} or more.")


class IdListField(SelectMultipleField):
    """Several database ids (a segment picker): refuses text and numbers no id can be."""

    def __init__(self, label: str | None = None, validators: Any = None, *,
                 noun: str = "segment", **kwargs: Any) -> None:
        kwargs.setdefault("validate_choice", False)
        super().__init__(label, validators, coerce=int, **kwargs)
        self.noun = noun
        self.bad: list[str] = []

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Keep the valid ids, remember the rest for the message."""
        self.data, self.bad = [], []
        for raw in valuelist:
            value = parse_whole(str(raw))
            if value is None or not in_id_range(value):
                self.bad.append(str(raw)[:40])
            else:
                self.data.append(value)

    def pre_validate(self, form: Any) -> None:
        """Name the values that cannot be ids."""
        if self.bad:
            listed = ", ".join(f"“{b}”" for b in self.bad[:5])
            raise StopValidation(
                f"Not a {self.noun} id: {listed} ({self.noun} ids are whole numbers from 1 "
                f"to {MAX_INT:,}).")
