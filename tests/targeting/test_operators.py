"""The operator registry: one record per operator, read by validator, labels, builder and SQL."""

from __future__ import annotations

import pytest

from webapp.segments.builder import operator_choices
from webapp.targeting import criterion_label, parse_criterion
from webapp.targeting import schema as s
from webapp.targeting.operators import REGISTRY, Operator, register
from webapp.targeting.sql import SQL_OPERATORS


def test_every_operator_has_its_hooks() -> None:
    """A positive operator has a Python and an SQL hook; a negative one names a positive one."""
    assert tuple(REGISTRY) == s.OPERATORS
    for name, op in REGISTRY.items():
        if op.negates is None:
            assert op.python is not None and name in SQL_OPERATORS, name
        else:
            assert REGISTRY[op.negates].negates is None, name
            assert set(op.types) == set(REGISTRY[op.negates].types), name
            assert name not in SQL_OPERATORS
    assert set(SQL_OPERATORS) <= set(REGISTRY)


def test_tables_come_from_the_registry() -> None:
    """The schema's operator tables are the registry's, so the two cannot disagree."""
    for kind, ops in s.OPERATORS_BY_TYPE.items():
        assert ops == tuple(n for n, op in REGISTRY.items() if kind in op.types)
    assert s.NEGATIVE == {s.NOT_EQUALS: s.EQUALS, s.NOT_IN: s.IN, s.NOT_CONTAINS: s.CONTAINS,
                          s.NOT_EXISTS: s.EXISTS}
    assert s.ORDERING == {s.GTE, s.GT, s.LTE, s.LT}
    assert s.VALUE_SHAPES[s.IN] == "list" and s.VALUE_SHAPES[s.EXISTS] == "none"


def test_wording_is_the_registrys() -> None:
    """The builder's words and the readable labels are read from the operator's record."""
    assert dict(operator_choices(s.DATE))[s.GT] == "is after"
    assert dict(operator_choices(s.LIST))[s.CONTAINS] == "has badge"
    assert dict(operator_choices(s.INTEGER))[s.LTE] == "is at most"
    assert dict(operator_choices(s.SEGMENT)) == {s.IN: "is in", s.NOT_IN: "is not in"}
    assert criterion_label(parse_criterion(
        {"field": "points", "operator": "<", "value": 5})) == "points less than 5"
    assert criterion_label(parse_criterion(
        {"field": "created_at", "operator": ">=", "value": "2024-01-01"})) == (
        "joined on or after 2024-01-01")
    assert criterion_label(parse_criterion(
        {"field": "tier", "operator": "not_contains", "value": "o"})) == (
        'tier does not contain "o"')


def test_register_refuses_a_second_record_or_a_missing_hook() -> None:
    """A name is registered once, and a positive operator needs its Python hook."""
    with pytest.raises(ValueError, match="registered twice"):
        register(REGISTRY[s.EQUALS])
    with pytest.raises(ValueError, match="Python hook"):
        register(Operator("never_registered", (s.STRING,), "one value", "w", "p"))
    assert "never_registered" not in REGISTRY
