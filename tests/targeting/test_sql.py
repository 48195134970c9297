"""SQL push-down edge cases, each checked against the Python evaluator on every database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.targeting.tables import MemberDB, member_row
from webapp.targeting import SegmentDefinitionError, matches
from webapp.targeting.sql import compile_criteria

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PEOPLE: list[dict[str, Any]] = [
    {"tier": "gold", "points": 1200, "badges": ["a", "B"], "email": "Foo@x.com",
     "birthday": "2000-02-29", "created_at": "2024-01-01T00:00:00Z",
     "custom_fields": {"n": 12, "s": "8", "b": True, "l": [1, "x", {"k": 1}],
                       "o": {"a": [1, 2]}, "nested": [["vip"], {"a": "vip"}, "x"],
                       "f": [1.0], "z": None}},
    {"tier": "Silver", "points": None, "badges": None, "birthday": None,
     "custom_fields": {"n": 12.0, "s": 8, "b": 1, "l": "x", "nested": "vip",
                       "f": 1}},
    {"tier": "bronze", "points": 5, "badges": [], "custom_fields": None},
    {"tier": "É", "points": 0, "badges": ["vip", "é"], "custom_fields": {"o": {"a": "b"}}},
]

CASES: list[tuple[dict[str, Any], list[int]]] = [
    ({"field": "points", "operator": ">=", "value": 1000}, [0]),
    ({"field": "points", "operator": "not_equals", "value": 5}, [0, 1, 3]),
    ({"field": "points", "operator": ">", "value": 4.5}, [0, 2]),
    ({"field": "badges", "operator": "contains", "value": "b", "case_insensitive": True}, [0]),
    ({"field": "badges", "operator": "not_contains", "value": "a"}, [1, 2, 3]),
    ({"field": "badges", "operator": "in", "value": ["x", "vip"]}, [3]),
    ({"field": "badges", "operator": "equals", "value": []}, [2]),
    ({"field": "badges", "operator": "contains", "value": "É", "case_insensitive": True}, []),
    ({"field": "custom_fields.n", "operator": "equals", "value": 12}, [0, 1]),
    ({"field": "custom_fields.s", "operator": ">", "value": 5}, [1]),
    ({"field": "custom_fields.b", "operator": "equals", "value": True}, [0]),
    ({"field": "custom_fields.b", "operator": "not_equals", "value": True}, [1, 2, 3]),
    ({"field": "custom_fields.l", "operator": "contains", "value": "x"}, [0, 1]),
    ({"field": "custom_fields.l", "operator": "equals", "value": [1, "X", {"k": 1}],
      "case_insensitive": True}, [0]),
    ({"field": "custom_fields.o", "operator": "equals", "value": {"a": [1, 2.0]}}, [0]),
    ({"field": "custom_fields.o.a", "operator": "exists"}, [0, 3]),
    ({"field": "custom_fields.o.a", "operator": "in", "value": ["b", 2]}, [0, 3]),
    ({"field": "custom_fields.l.k", "operator": "exists"}, []),
    ({"field": "custom_fields.l", "operator": "in", "value": [1, "y"]}, [0]),
    ({"field": "custom_fields.nested", "operator": "contains", "value": "vip"}, [1]),
    ({"field": "custom_fields.nested", "operator": "in", "value": ["vip"]}, [1]),
    ({"field": "custom_fields.f", "operator": "contains", "value": 1}, [0]),
    ({"field": "custom_fields.f", "operator": "equals", "value": 1}, [1]),
    ({"field": "custom_fields.z", "operator": "not_exists"}, [0, 1, 2, 3]),
    ({"field": "custom_fields.z", "operator": "not_in", "value": [1]}, [0, 1, 2, 3]),
    ({"field": "age", "operator": ">=", "value": 25}, [0]),
    ({"field": "age", "operator": "not_exists"}, [1, 2, 3]),
    ({"field": "email", "operator": "equals", "value": "FOO@x.com"}, [0]),
    ({"field": "email", "operator": "not_contains", "value": "foo"}, [1, 2, 3]),
    ({"field": "tier", "operator": "in", "value": ["silver"], "case_insensitive": True}, [1]),
    ({"field": "tier", "operator": "equals", "value": "é", "case_insensitive": True}, []),
    ({"field": "tier", "operator": "contains", "value": ""}, [0, 1, 2, 3]),
    ({"field": "created_at", "operator": "<", "value": {"days_ago": 30}}, [0]),
    ({"field": "created_at", "operator": "not_equals", "value": "2024-01-01"}, [1, 2, 3]),
    ({"field": "tier", "operator": "not_contains", "value": "o"}, [1, 3]),
    ({"field": "segment", "operator": "in", "value": [7]}, [1]),
    ({"field": "segment", "operator": "not_in", "value": [7]}, [0, 2, 3]),
]


@pytest.fixture()
def loaded(member_db: MemberDB) -> MemberDB:
    """The database holding PEOPLE (member 1 is in segment 7)."""
    with member_db.engine.begin() as conn:
        member_db.reset(conn)
        conn.execute(member_db.members.insert(),
                     [member_row(m, i) for i, m in enumerate(PEOPLE)])
        conn.execute(member_db.memberships.insert(),
                     [{"segment_id": 7, "member_id": member_row(PEOPLE[1], 1)["id"],
                       "via": "rule"}])
    return member_db


@pytest.mark.parametrize(("criterion", "expected"), CASES)
def test_sql_matches_python(loaded: MemberDB, criterion: dict[str, Any],
                            expected: list[int]) -> None:
    """The SQL selects the expected members, as Python does, included and excluded alike."""
    for group in ("include", "exclude"):
        definition = {"kind": "dynamic", group: [criterion]}
        expr = compile_criteria(definition, loaded.members, dialect=loaded.dialect, now=NOW,
                                memberships=loaded.memberships)
        with loaded.engine.connect() as conn:
            ids = {r[0] for r in conn.execute(sa.select(loaded.members.c.external_id)
                                              .where(expr))}
        python = {f"ext-{i}" for i, m in enumerate(PEOPLE) if matches(
            definition, {**m, "email": (m.get("email") or "").lower() or None}, now=NOW,
            memberships={7} if i == 1 else set())}
        assert ids == python
        want = set(expected) if group == "include" else set(range(len(PEOPLE))) - set(expected)
        assert ids == {f"ext-{i}" for i in want}


def test_static_and_errors(loaded: MemberDB) -> None:
    """A static definition selects nobody by rule; segment criteria need the memberships table."""
    expr = compile_criteria({"kind": "static"}, loaded.members, dialect=loaded.dialect)
    with loaded.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(expr)).scalar_one() == 0
    with pytest.raises(SegmentDefinitionError, match="segment_memberships"):
        compile_criteria({"include": [{"field": "segment", "operator": "in", "value": [1]}]},
                         loaded.members, dialect=loaded.dialect)
    with pytest.raises(ValueError, match="dialect"):
        compile_criteria({}, loaded.members, dialect="mysql")
