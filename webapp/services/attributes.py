"""The attribute registry: declared custom fields of members (admin-managed).

A declaration gives one top-level custom-field key a JSON type (webapp.targeting.declared),
optional allowed values, a description and an example. The segment builder offers declared
fields by name; member writes are checked against them (`ATTRIBUTE_CHECK`: `refuse` refuses a
write whose value disagrees, `flag` accepts it and the registry page counts it); the registry
page shows, per field, how many members have a value and how many values disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import AttributeDefinition, Member
from webapp.services.audit import record
from webapp.services.errors import Conflict, ServiceError
from webapp.targeting.declared import TYPES, WITH_ALLOWED, fits_type, value_problem
from webapp.targeting.paths import key_problem
from webapp.targeting.sql import declared_checks

KEY_MAX = 200
DESCRIPTION_MAX = 2000
ALLOWED_MAX = 200
ALLOWED_TEXT_MAX = 200
MAX_DECLARED = 500


class AttributeError_(ServiceError):
    """A refused registry change; `.errors` maps each field to what is wrong with it."""


@dataclass(frozen=True)
class Declared:
    """A declaration as the checks and the builder read it."""

    key: str
    type: str
    allowed: tuple[Any, ...]
    description: str
    example: Any

    @property
    def type_label(self) -> str:
        return TYPES[self.type]

    def problem(self, value: Any) -> str | None:
        return value_problem(self.key, self.type, list(self.allowed) or None, value)


def _declared(row: AttributeDefinition) -> Declared:
    return Declared(key=row.key, type=row.type, allowed=tuple(row.allowed_values or ()),
                    description=row.description or "", example=row.example)


def declared() -> dict[str, Declared]:
    """Every declaration by key, in key order."""
    rows = db.session.scalars(sa.select(AttributeDefinition).order_by(AttributeDefinition.key))
    return {row.key: _declared(row) for row in rows}


def definitions() -> list[AttributeDefinition]:
    return list(db.session.scalars(
        sa.select(AttributeDefinition).order_by(AttributeDefinition.key)))


# --- validation ---------------------------------------------------------------------------------

def _parse_value(kind: str, text: str) -> Any:
    """A value typed by a person (allowed value or example) as the declared type's JSON value;
    raises ValueError with the message."""
    text = text.strip()
    if kind in ("string", "date"):
        return text
    if kind == "number":
        try:
            number = json.loads(text)
        except ValueError:
            number = None
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValueError(f"{text!r} is not a number.")
        return number
    if kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError(f"{text!r} is not true or false.")
    return text  # an element of a list of text


def _allowed_value(kind: str, item: Any, typed: bool) -> Any:
    """One allowed value, checked (typed: as sent; otherwise parsed from a line of text)."""
    if not typed:
        if len(item) > ALLOWED_TEXT_MAX:
            raise ValueError(f"must be at most {ALLOWED_TEXT_MAX} characters.")
        return _parse_value(kind, item)
    element = "string" if kind == "list" else kind
    if not fits_type(element, item):
        raise ValueError(f"{json.dumps(item)[:60]} is not {TYPES[element]}.")
    if isinstance(item, str) and len(item) > ALLOWED_TEXT_MAX:
        raise ValueError(f"must be at most {ALLOWED_TEXT_MAX} characters.")
    return item


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) if not isinstance(v, str) else v for v in value]
    return [line for line in str(value).splitlines() if line.strip()]


def validate(data: dict[str, Any], *, definition: AttributeDefinition | None = None,
             typed: bool = False) -> dict[str, Any]:
    """Check a declaration (key, type, allowed_values, description, example); returns the clean
    values or raises AttributeError_ naming each bad field.

    As a form posts it (`typed` false), allowed values are lines of text and the example text;
    as the API sends it (`typed`), allowed values are a JSON list and the example a JSON value
    of the declared type."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    key = data.get("key", definition.key if definition else "")
    key = key.strip() if isinstance(key, str) else ""
    if not key:
        errors["key"] = "Key is required."
    elif len(key) > KEY_MAX:
        errors["key"] = f"Key must be at most {KEY_MAX} characters ({len(key)} given)."
    elif key_problem(key):
        errors["key"] = f"Key has a {key_problem(key)}."
    else:
        taken = db.session.scalar(sa.select(AttributeDefinition.id).where(
            AttributeDefinition.key == key))
        if taken is not None and (definition is None or taken != definition.id):
            errors["key"] = Conflict(f"The custom field {key!r} is already declared.")
    out["key"] = key
    kind = data.get("type") or ""
    if not isinstance(kind, str) or kind not in TYPES:
        errors["type"] = (f"Type is one of {', '.join(TYPES)}." if typed else
                          f"Type is one of {', '.join(TYPES.values())}.")
        kind = ""
    out["type"] = kind
    description = data.get("description") or ""
    if not isinstance(description, str):
        errors["description"] = "Description is text."
        description = ""
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = (f"Description must be at most {DESCRIPTION_MAX} characters "
                                 f"({len(description)} given).")
    out["description"] = description
    allowed: list[Any] = []
    given = data.get("allowed_values")
    items = given if typed and isinstance(given, list) else _lines(given)
    if typed and given is not None and not isinstance(given, list):
        errors["allowed_values"] = "Allowed values are a list (or null for any value)."
    elif items and kind in TYPES and kind not in WITH_ALLOWED:
        errors["allowed_values"] = (f"Allowed values can be listed for text, numbers and lists "
                                    f"of text, not for {TYPES[kind]}.")
    elif len(items) > ALLOWED_MAX:
        errors["allowed_values"] = (f"Allowed values: at most {ALLOWED_MAX} "
                                    f"({len(items)} given).")
    elif kind in TYPES:
        for number, item in enumerate(items, 1):
            try:
                value = _allowed_value(kind, item, typed)
            except ValueError as exc:
                errors["allowed_values"] = f"Allowed value {number}: {exc}"
                break
            if value not in allowed:
                allowed.append(value)
    out["allowed_values"] = allowed or None
    given = data.get("example")
    example = None
    if given not in (None, "") and kind in TYPES:
        if typed:
            example = given
            if isinstance(given, list) and len(given) > ALLOWED_MAX:
                errors["example"] = f"The example lists at most {ALLOWED_MAX} values."
        elif kind == "list":
            example = [part.strip() for part in str(given).split(",") if part.strip()]
        else:
            try:
                example = _parse_value(kind, str(given))
            except ValueError as exc:
                errors["example"] = f"Example: {exc}"
        if not errors.keys() & {"example", "allowed_values"}:
            problem = value_problem(key or "field", kind, allowed or None, example)
            if problem:
                errors["example"] = f"The example does not fit: {problem}"
    out["example"] = example
    if definition is None and not errors and db.session.scalar(
            sa.select(sa.func.count()).select_from(AttributeDefinition)) >= MAX_DECLARED:
        errors[""] = f"At most {MAX_DECLARED} custom fields can be declared."
    if errors:
        status = 409 if set(errors) == {"key"} and isinstance(errors["key"], Conflict) else 422
        raise AttributeError_(errors, status)
    return out


def _snapshot(row: AttributeDefinition) -> dict[str, Any]:
    return {"key": row.key, "type": row.type, "allowed_values": row.allowed_values,
            "description": row.description, "example": row.example}


def save(data: dict[str, Any], *, actor: str, definition: AttributeDefinition | None = None,
         typed: bool = False) -> AttributeDefinition:
    """Create or change a declaration, audited; the caller's transaction is committed
    (`typed`: values as the API sends them, see `validate`)."""
    values = validate(data, definition=definition, typed=typed)
    before = _snapshot(definition) if definition else None
    row = definition or AttributeDefinition()
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_by_label = actor
    if definition is None:
        db.session.add(row)
    db.session.flush()
    record(actor, "attribute.update" if before else "attribute.create", "attribute", row.id,
           f"{'Changed' if before else 'Declared'} custom field {row.key!r} "
           f"({TYPES[row.type]})", before=before, after=_snapshot(row))
    db.session.commit()
    return row


def delete(definition: AttributeDefinition, *, actor: str) -> None:
    """Remove a declaration (members' values are kept; they are simply undeclared again)."""
    record(actor, "attribute.delete", "attribute", definition.id,
           f"Removed the declaration of custom field {definition.key!r}",
           before=_snapshot(definition))
    db.session.delete(definition)
    db.session.commit()


# --- member writes ------------------------------------------------------------------------------

def mode() -> str:
    return current_app.config.get("ATTRIBUTE_CHECK", "refuse")


def problems(custom_fields: dict[str, Any] | None,
             registry: dict[str, Declared] | None = None) -> dict[str, str]:
    """Declared custom fields whose value disagrees: key -> message."""
    if not custom_fields:
        return {}
    registry = declared() if registry is None else registry
    out = {}
    for key, value in custom_fields.items():
        found = registry.get(key)
        if found is not None:
            problem = found.problem(value)
            if problem:
                out[key] = problem
    return out


def check_write(custom_fields: dict[str, Any] | None,
                registry: dict[str, Declared] | None = None) -> str | None:
    """The message refusing these custom fields (ATTRIBUTE_CHECK=refuse), or None."""
    if mode() != "refuse":
        return None
    found = problems(custom_fields, registry)
    return " ".join(found.values()) if found else None


# --- usage --------------------------------------------------------------------------------------

def usage(rows: Iterable[AttributeDefinition] | None = None) -> dict[str, tuple[int, int]]:
    """Per declared key (of `rows`, default all): (members with a value, members whose value
    disagrees), exact, in one pass over the members table (a statement per 50 keys)."""
    members = Member.__table__
    dialect = db.session.get_bind().dialect.name
    rows = list(definitions() if rows is None else rows)
    out: dict[str, tuple[int, int]] = {}
    for start in range(0, len(rows), 50):
        columns = []
        for row in rows[start:start + 50]:
            present, fits = declared_checks(members, row.key, row.type, row.allowed_values,
                                            dialect=dialect)
            columns += [sa.func.count().filter(present), sa.func.count().filter(sa.and_(
                present, sa.not_(sa.func.coalesce(fits, sa.false(), type_=sa.Boolean))))]
        counts = db.session.execute(sa.select(*columns).select_from(members)).one()
        for n, row in enumerate(rows[start:start + 50]):
            out[row.key] = (int(counts[2 * n]), int(counts[2 * n + 1]))
    return out

