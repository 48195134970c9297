"""Declared custom fields: the JSON types a program may declare for a member's custom field,
and whether a stored value fits its declaration (pure; the SQL twin is
:func:`webapp.targeting.sql.declared_checks`).

A declaration names one top-level key of ``custom_fields``, one of :data:`TYPES`, and
optionally the values allowed (for strings, numbers and the elements of a list of strings).
A missing key or a JSON null means "not set" and always fits.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

#: Declarable types: name -> label for people.
TYPES: dict[str, str] = {
    "string": "text",
    "number": "number",
    "boolean": "true / false",
    "date": "date (YYYY-MM-DD)",
    "list": "list of text",
}
#: Which kinds of values may be listed as allowed values.
WITH_ALLOWED = ("string", "number", "list")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def is_date(value: Any) -> bool:
    """A calendar date written YYYY-MM-DD."""
    if not isinstance(value, str) or not DATE_RE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fits_type(kind: str, value: Any) -> bool:
    """Whether a (non-null) JSON value has the declared type."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return is_date(value)
    if kind == "list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise ValueError(f"unknown declared type {kind!r}")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def value_problem(key: str, kind: str, allowed: list[Any] | None, value: Any) -> str | None:
    """Why `value` does not fit the declaration of custom field `key`, or None (null fits)."""
    if value is None:
        return None
    if not fits_type(kind, value):
        return (f"Custom field {key!r} is declared as {TYPES[kind]}; "
                f"{_shown(value)} is not.")
    if allowed:
        items = value if kind == "list" else [value]
        for item in items:  # the type fits, so no bool meets a number here
            if item not in allowed:
                return (f"Custom field {key!r} allows {', '.join(_shown(a) for a in allowed)}; "
                        f"{_shown(item)} is not one of them.")
    return None
