"""The criteria vocabulary: fields, their types, operators and which operators fit which type.

The dashboard's criteria builder reads these tables; the validator enforces them.
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

CUSTOM_PREFIX = "custom_fields."

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

#: All operators, in the order the criteria builder lists them.
OPERATORS: tuple[str, ...] = (
    EQUALS, NOT_EQUALS, IN, NOT_IN, CONTAINS, NOT_CONTAINS, GTE, GT, LTE, LT, EXISTS, NOT_EXISTS,
)
ORDERING = frozenset({GTE, GT, LTE, LT})
NEGATIVE = {NOT_EQUALS: EQUALS, NOT_IN: IN, NOT_CONTAINS: CONTAINS, NOT_EXISTS: EXISTS}

#: Which operators fit each field type.
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    STRING: (EQUALS, NOT_EQUALS, IN, NOT_IN, CONTAINS, NOT_CONTAINS, EXISTS, NOT_EXISTS),
    INTEGER: (EQUALS, NOT_EQUALS, IN, NOT_IN, GTE, GT, LTE, LT, EXISTS, NOT_EXISTS),
    LIST: (EQUALS, NOT_EQUALS, IN, NOT_IN, CONTAINS, NOT_CONTAINS, EXISTS, NOT_EXISTS),
    DATE: (EQUALS, NOT_EQUALS, GTE, GT, LTE, LT, EXISTS, NOT_EXISTS),
    DATETIME: (EQUALS, NOT_EQUALS, GTE, GT, LTE, LT, EXISTS, NOT_EXISTS),
    ANY: OPERATORS,
    SEGMENT: (IN, NOT_IN),
}

#: The shape of the value each operator takes ("none" = no value), for the criteria builder.
VALUE_SHAPES: dict[str, str] = {
    EQUALS: "one value", NOT_EQUALS: "one value", IN: "list", NOT_IN: "list",
    CONTAINS: "one value", NOT_CONTAINS: "one value", GTE: "number or date", GT: "number or date",
    LTE: "number or date", LT: "number or date", EXISTS: "none", NOT_EXISTS: "none",
}

# Limits from SPEC §5 (defaults; callers may pass their own).
MAX_INCLUDE = 50
MAX_EXCLUDE = 50

# Numbers must fit a 64-bit integer column; days_ago is kept to a sane range.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DAYS_AGO = 100_000


def field_type(field: str) -> str | None:
    """The type of a canonical field name, or None when it is not a field."""
    if field.startswith(CUSTOM_PREFIX):
        return ANY
    kind = FIELDS.get(field)
    return None if field == "custom_fields.<key>" else kind
