"""The criteria vocabulary: fields, their types and the operator names.

The dashboard's criteria builder reads these tables; the validator enforces them. Which operators
fit which type, and everything else about an operator, is in :mod:`webapp.targeting.operators`.
"""

from __future__ import annotations

# Field types. "any" is a custom field compared by its JSON type; "list" is a list of strings.
STRING = "string"
INTEGER = "integer"
LIST = "list"
DATE = "date"
DATETIME = "datetime"
ANY = "any"
SEGMENT = "segment"
ACTIVITY = "activity"  # a measure of the member's activities (webapp.targeting.behaviour)

#: The program's tier order, lowest first (`config.load()` exposes it as TIERS; rules that
#: compare tiers read it here).
TIERS: tuple[str, ...] = ("bronze", "silver", "gold", "platinum")

CUSTOM_PREFIX = "custom_fields."
CUSTOM_QUOTED_PREFIX = "custom_fields["  # a first key in quotes (see webapp.targeting.paths)

#: Every field a criterion may name (custom fields as the pattern ``custom_fields.<key>``).
FIELDS: dict[str, str] = {
    "tier": STRING,
    "email": STRING,
    "external_id": STRING,
    "points": INTEGER,
    "xp": INTEGER,
    "coins": INTEGER,
    "age": INTEGER,
    "badges": LIST,
    "birthday": DATE,
    "created_at": DATETIME,
    "updated_at": DATETIME,
    "custom_fields.<key>": ANY,
    "segment": SEGMENT,
    "activity.<measure>": ACTIVITY,
}

#: camelCase and other accepted spellings, mapped to the canonical snake_case name.
FIELD_ALIASES: dict[str, str] = {
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "externalId": "external_id",
}
CUSTOM_ALIAS_PREFIX = "customFields."

EQUALS = "equals"
NOT_EQUALS = "not_equals"
IN = "in"
NOT_IN = "not_in"
CONTAINS = "contains"
NOT_CONTAINS = "not_contains"
GTE = ">="
GT = ">"
LTE = "<="
LT = "<"
EXISTS = "exists"
NOT_EXISTS = "not_exists"

# Limits from SPEC §5 (defaults; callers may pass their own).
MAX_INCLUDE = 50
MAX_EXCLUDE = 50

# Groups (SPEC §8): `{"all": [...]}`, `{"any": [...]}`, `{"none": [...]}`, nested at most this deep.
GROUP_MODES = ("all", "any", "none")
MAX_GROUP_DEPTH = 3

# Numbers must fit a 64-bit integer column; days_ago is kept to a sane range.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DAYS_AGO = 100_000


def field_type(field: str) -> str | None:
    """The type of a canonical field name, or None when it is not a field."""
    if field.startswith((CUSTOM_PREFIX, CUSTOM_QUOTED_PREFIX)):
        return ANY
    if field.startswith("activity."):
        return ACTIVITY
    kind = FIELDS.get(field)
    return None if field in ("custom_fields.<key>", "activity.<measure>") else kind


# The operator tables are derived from the operator registry, which reads the names above (the
# package imports this module first, so they are defined by then).
from webapp.targeting.operators import (  # noqa: E402
    NEGATIVE,
    OPERATORS,
    OPERATORS_BY_TYPE,
    ORDERING,
    VALUE_SHAPES,
)

__all__ = [
    "ACTIVITY", "ANY", "CONTAINS", "CUSTOM_ALIAS_PREFIX", "CUSTOM_PREFIX", "CUSTOM_QUOTED_PREFIX",
    "DATE", "DATETIME", "EQUALS", "EXISTS", "FIELDS", "FIELD_ALIASES", "GROUP_MODES", "GT",
    "GTE", "IN",
    "INT64_MAX", "INT64_MIN", "INTEGER", "LIST", "LT", "LTE", "MAX_DAYS_AGO", "MAX_EXCLUDE",
    "MAX_GROUP_DEPTH", "MAX_INCLUDE",
    "NEGATIVE", "NOT_CONTAINS", "NOT_EQUALS", "NOT_EXISTS", "NOT_IN", "OPERATORS",
    "OPERATORS_BY_TYPE", "ORDERING", "SEGMENT", "STRING", "TIERS", "VALUE_SHAPES",
    "field_type",
]
