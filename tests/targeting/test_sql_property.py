"""Property: random members x random criteria give the same answer in Python and in SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.targeting.tables import MemberDB, member_row
from webapp.targeting import (
    OPERATORS_BY_TYPE,
    SegmentDefinitionError,
    canonical_field,
    evaluate_segment,
    field_type,
    matches,
    parse_criterion,
)
from webapp.targeting.sql import compile_criteria

TEXT = st.sampled_from(["gold", "Gold", "GOLD", "silver", "go", "", "É", "é", "ß", "x y", "8"])
KEYS = st.sampled_from(["a", "b", "c"])
BADGES = st.sampled_from(["a", "A", "b", "vip", "VIP", "é", "É"])
NUMBERS = st.one_of(
    st.integers(-3, 15),
    st.integers(-3, 15).map(lambda i: i + 0.5),
    st.sampled_from([0, 12, 12.0, 12.5, -1.5, 2**40, 2**40 + 0.5, 1000]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(TEXT, NUMBERS, st.booleans())
JSON = st.recursive(
    st.one_of(st.none(), SCALARS),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
NOW = st.sampled_from([
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC), datetime(2025, 2, 28, 23, 30, tzinfo=UTC),
    datetime(2025, 3, 1, 0, 30, tzinfo=UTC), datetime(2026, 6, 15, 9, 0, tzinfo=UTC),
])
ZONES = st.sampled_from(["UTC", "America/Los_Angeles", "Pacific/Kiritimati"])
BIRTHDAYS = st.one_of(
    st.sampled_from([date(2000, 2, 29), date(2004, 2, 29), date(2007, 2, 28), date(2007, 3, 1),
                     date(2006, 6, 15), date(2008, 6, 15), date(2030, 1, 1), date(1901, 1, 1)]),
    st.dates(date(1900, 1, 1), date(2030, 12, 31)),
)
MOMENTS = st.datetimes(datetime(2023, 1, 1), datetime(2027, 1, 1))


CUSTOM_VALUES = st.one_of(SCALARS, SCALARS, JSON, st.lists(SCALARS, max_size=3))


def _near(draw: Any, now: datetime) -> dict[str, Any]:
    """Birthdays and timestamps close to the boundaries the criteria will test."""
    today = now.date()
    years = draw(st.sampled_from([0, 1, 17, 18, 25, 26, 65]))
    shift = draw(st.sampled_from([-1, 0, 1]))
    try:
        birthday = today.replace(year=today.year - years)
    except ValueError:
        birthday = date(today.year - years, 2, 28)
    moment = now.replace(tzinfo=None) - timedelta(days=draw(st.sampled_from([0, 1, 30, 365])))
    return {"birthday": birthday + timedelta(days=shift),
            "moment": moment + timedelta(seconds=draw(st.sampled_from([-1, 0, 1, -86400])))}


@st.composite
def members(draw: Any, now: datetime) -> dict[str, Any]:
    """A member as the API gives it; any attribute may be missing."""
    m: dict[str, Any] = {"tier": draw(TEXT.filter(bool))}
    if draw(st.booleans()):
        m["email"] = draw(st.sampled_from(["Ann@X.com", "bob@x.com", "ÉVE@x.com", "x"]))
    for key in ("points", "xp"):
        if draw(st.booleans()):
            m[key] = draw(st.one_of(st.integers(-5, 20), st.integers(-5, 2000)))
    m["coins"] = draw(st.integers(0, 20))
    near = _near(draw, now)
    if draw(st.booleans()):
        m["birthday"] = draw(st.one_of(st.just(near["birthday"]), BIRTHDAYS)).isoformat()
    if draw(st.booleans()):
        m["badges"] = draw(st.lists(BADGES, max_size=4))
    if draw(st.integers(0, 3)):
        m["custom_fields"] = draw(st.dictionaries(KEYS, CUSTOM_VALUES, max_size=3))
    for key in ("created_at", "updated_at"):
        if draw(st.booleans()):
            m[key] = draw(st.one_of(st.just(near["moment"]), MOMENTS)).isoformat()
    return m


def _value_for(draw: Any, field: str, op: str, people: list[dict[str, Any]]) -> Any:
    kind_value: dict[str, Any] = {
        "tier": TEXT, "email": st.sampled_from(["ann@x.com", "ANN@X.COM", "éve@x.com", "@", "x"]),
        "external_id": st.sampled_from(["ext-0", "ext-1", "EXT-2", "ext"]),
        "points": NUMBERS, "xp": NUMBERS, "coins": NUMBERS,
        "age": st.one_of(st.integers(-2, 130), st.sampled_from([0, 1, 17, 18, 25, 26, 65])),
        "badges": BADGES,
    }
    if op in ("exists", "not_exists"):
        return None
    if field == "segment":
        return draw(st.lists(st.integers(1, 4), max_size=3))
    if field in ("birthday", "created_at", "updated_at"):
        if draw(st.booleans()):
            return {"days_ago": draw(st.sampled_from([0, 1, 30, 365, 366 * 18, 9000]))}
        if field == "birthday":
            return draw(BIRTHDAYS).isoformat()
        moment = draw(MOMENTS)
        return draw(st.sampled_from([
            moment.date().isoformat(), moment.isoformat() + "Z",
            moment.isoformat() + "+02:00", moment.replace(microsecond=0).isoformat()]))
    if field.startswith(("custom_fields", "customFields")):
        present = [m["custom_fields"].get(field.split(".")[1]) for m in people
                   if isinstance(m.get("custom_fields"), dict)]
        present = [v for v in present if v is not None]
        scalars = st.one_of(SCALARS, st.sampled_from(
            [v for v in present if not isinstance(v, list | dict)] or [1]))
        if op in ("in", "not_in"):
            return draw(st.lists(scalars, max_size=4))
        if op in ("contains", "not_contains"):
            return draw(scalars)
        if op in (">", ">=", "<", "<="):
            return draw(NUMBERS)
        return draw(st.one_of(JSON.filter(lambda v: v is not None),
                              st.sampled_from(present or [1])))
    base = kind_value[field]
    if field in ("points", "xp", "coins"):
        # Values next to the members' own make the boundaries (>, >=, floats) count.
        present = [m[field] for m in people if m.get(field) is not None]
        near = st.sampled_from(present or [0]).flatmap(
            lambda v: st.sampled_from([v, v - 1, v + 1, v - 0.5, v + 0.5, float(v)]))
        base = st.one_of(base, near)
    if op in ("in", "not_in"):
        return draw(st.lists(base, max_size=4))
    if field == "badges" and op in ("equals", "not_equals"):
        return draw(st.lists(BADGES, max_size=3))
    return draw(base)


FIELDS = ["tier", "email", "external_id", "points", "xp", "coins", "age", "badges", "birthday",
          "created_at", "updated_at", "custom_fields.a", "custom_fields.b",
          "custom_fields.a.b", "customFields.c", "segment"]
@st.composite
def criteria(draw: Any, people: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid criterion (invalid combinations are redrawn)."""
    for _ in range(50):
        field = draw(st.sampled_from(FIELDS))
        op = draw(st.sampled_from(OPERATORS_BY_TYPE[field_type(canonical_field(field)) or ""]))
        raw: dict[str, Any] = {"field": field, "operator": op}
        value = _value_for(draw, field, op, people)
        if value is not None:
            raw["value"] = value
        if draw(st.integers(0, 3)) == 0:
            raw["case_insensitive"] = True
        try:
            parse_criterion(raw)
        except SegmentDefinitionError:
            continue
        return raw
    return {"field": "tier", "operator": "exists"}


@st.composite
def scenarios(draw: Any, max_include: int = 3, max_exclude: int = 2) -> dict[str, Any]:
    """A clock, a zone, some members with memberships and a definition over them."""
    now = draw(NOW)
    people = draw(st.lists(members(now), min_size=1, max_size=6))
    links = [draw(st.sets(st.integers(1, 4), max_size=2)) for _ in people]
    include = draw(st.lists(criteria(people), max_size=max_include))
    exclude = draw(st.lists(criteria(people), max_size=max_exclude))
    return {"definition": {"kind": "dynamic", "include": include, "exclude": exclude},
            "people": people, "links": links, "now": now, "tz": draw(ZONES)}


def _same_answers(db: MemberDB, definition: dict[str, Any], people: list[dict[str, Any]],
                  memberships: list[set[int]], now: datetime, tz: str) -> None:
    rows = [member_row(m, i) for i, m in enumerate(people)]
    seen: set[str] = set()
    for row in rows:  # emails are unique in the table
        if row["email"] in seen:
            row["email"] = None
        seen.add(row["email"])
    for m, row in zip(people, rows, strict=True):
        m["email"] = row["email"]
        m["external_id"] = row["external_id"]
    expr = compile_criteria(definition, db.members, dialect=db.dialect, now=now, tz=tz,
                            memberships=db.memberships)
    with db.engine.begin() as conn:
        db.reset(conn)
        conn.execute(db.members.insert(), rows)
        links = [{"segment_id": sid, "member_id": row["id"], "via": "rule"}
                 for row, sids in zip(rows, memberships, strict=True) for sid in sids]
        if links:
            conn.execute(db.memberships.insert(), links)
        in_sql = {r[0] for r in conn.execute(sa.select(db.members.c.id).where(expr))}
        conn.rollback()
    in_python = {row["id"] for m, row, sids in zip(people, rows, memberships, strict=True)
                 if matches(definition, m, now=now, tz=tz, memberships=sids)}
    results = [evaluate_segment(definition, m, now=now, tz=tz, memberships=sids)
               for m, sids in zip(people, memberships, strict=True)]
    explained = {row["id"] for row, r in zip(rows, results, strict=True) if r.matched}
    assert explained == in_python
    # The tree is built from each criterion's own rule, apart from the compiled matcher.
    trees = {row["id"] for row, r in zip(rows, results, strict=True) if r.explanation["passed"]}
    assert trees == in_python
    assert in_sql == in_python, {
        "sql_only": [people[rows.index(r)] for r in rows if r["id"] in in_sql - in_python],
        "python_only": [people[rows.index(r)] for r in rows if r["id"] in in_python - in_sql],
    }


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_python_and_sql_agree(member_db: MemberDB, scenario: dict[str, Any]) -> None:
    """Whatever the members and criteria, SQL selects exactly the members Python matches."""
    _same_answers(member_db, scenario["definition"], scenario["people"], scenario["links"],
                  scenario["now"], scenario["tz"])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios(max_include=1, max_exclude=1))
def test_single_criteria_agree(member_db: MemberDB, scenario: dict[str, Any]) -> None:
    """One criterion at a time (include and/or exclude), where a mismatch is easy to read."""
    _same_answers(member_db, scenario["definition"], scenario["people"], scenario["links"],
                  scenario["now"], scenario["tz"])


def test_dates_near_now_agree(member_db: MemberDB) -> None:
    """Relative dates right at the boundary give the same answer (fixed now)."""
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    people = [{"tier": "gold", "created_at": (now - timedelta(days=30, seconds=s)).isoformat()}
              for s in (-1, 0, 1)]
    for op in (">=", ">", "<", "<=", "equals"):
        definition = {"include": [{"field": "created_at", "operator": op,
                                   "value": {"days_ago": 30}}]}
        _same_answers(member_db, definition, [dict(p) for p in people], [set()] * 3, now, "UTC")


def test_age_grid_agrees(member_db: MemberDB) -> None:
    """Every age operator around birthdays (29 Feb included) on edge days, Python and SQL alike."""
    days = [datetime(2024, 2, 29, 12, tzinfo=UTC), datetime(2025, 2, 28, 12, tzinfo=UTC),
            datetime(2025, 3, 1, 12, tzinfo=UTC), datetime(2025, 6, 15, 12, tzinfo=UTC)]
    births = [date(2000, 2, 29), date(2004, 2, 29), date(2007, 2, 28), date(2007, 3, 1),
              date(2007, 6, 14), date(2007, 6, 15), date(2007, 6, 16), date(2030, 1, 1)]
    people = [{"tier": "gold", "birthday": b.isoformat()} for b in births] + [{"tier": "none"}]
    for now in days:
        for op in ("equals", "not_equals", ">=", ">", "<=", "<", "in", "not_in"):
            for value in (17, 18, 20, 21, 24, 25, -5, 17.5):
                v: Any = [value, value + 1] if op in ("in", "not_in") else value
                definition = {"include": [{"field": "age", "operator": op, "value": v}]}
                _same_answers(member_db, definition, [dict(p) for p in people],
                              [set()] * len(people), now, "UTC")


GRID_MEMBERS: list[dict[str, Any]] = [
    {"tier": "gold"}, {"tier": "Gold", "points": -1, "xp": 0, "coins": 0},
    {"tier": "GOLD", "points": 0, "xp": 5, "coins": 4}, {"tier": "go", "points": 4, "xp": 12},
    {"tier": "É", "points": 5, "xp": 1000, "coins": 5}, {"tier": "é", "points": 12, "xp": -1},
    {"tier": "", "points": 1000, "coins": 12},
] + [{"tier": "x", "custom_fields": {"v": v}} for v in [
    None, 5, 5.0, 4.5, "5", True, False, 0, 1, "abc", "ABC", "", "xabcx", [5, "x"], [[5]],
    {"a": 5}, {"a": 5.0}, ["ABC"], [], [True], [1], {"a": {"b": "abc"}}, [{"a": 5}]]] + [
    {"tier": "y", "custom_fields": {"v": {"a": v}}} for v in [5, "abc", [5], None]] + [
    {"tier": "z", "badges": b} for b in [["a"], ["A", "b"], [], ["é", "É"], ["a", "a"]]]
GRID_VALUES: list[Any] = [
    -1, 0, 4.5, 5, 5.0, 12, 12.5, 1000, 1, True, False, "5", "abc", "ABC", "", "a", "A", "é",
    "go", "gold", [5, 12.0], [], [4.5], [1, "abc"], ["a", "b"], ["A"], [True], [5, "x"],
    {"a": 5}, {"a": {"b": "ABC"}}, [[5]], ["gold", "É"], [{"a": 5}]]
GRID_FIELDS = ["tier", "points", "xp", "coins", "badges", "custom_fields.v", "custom_fields.v.a",
               "custom_fields.v.a.b"]


def test_grid_agrees(member_db: MemberDB) -> None:
    """Every valid (field, operator, value, case) over members of every JSON type: same answer."""
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    people = [dict(m) for m in GRID_MEMBERS]
    definitions = []
    for field in GRID_FIELDS:
        for op in OPERATORS_BY_TYPE[field_type(field) or ""]:
            for value in [None, *GRID_VALUES]:
                for ci in (False, True):
                    raw: dict[str, Any] = {"field": field, "operator": op}
                    if value is not None:
                        raw["value"] = value
                    if ci:
                        raw["case_insensitive"] = True
                    try:
                        parse_criterion(raw)
                    except SegmentDefinitionError:
                        continue
                    definitions.append({"include": [raw]})
                    definitions.append({"exclude": [raw]})
    assert len(definitions) > 1000
    rows = [member_row(m, i) for i, m in enumerate(people)]
    for m, row in zip(people, rows, strict=True):
        m.update(external_id=row["external_id"], coins=row["coins"])  # as the model gives them
    with member_db.engine.begin() as conn:
        member_db.reset(conn)
        conn.execute(member_db.members.insert(), rows)
        for definition in definitions:
            expr = compile_criteria(definition, member_db.members, dialect=member_db.dialect,
                                    now=now)
            in_sql = {r[0] for r in conn.execute(
                sa.select(member_db.members.c.external_id).where(expr))}
            in_python = {m["external_id"] for m in people if matches(definition, m, now=now)}
            assert in_sql == in_python, definition
            trees = {m["external_id"] for m in people
                     if evaluate_segment(definition, m, now=now).explanation["passed"]}
            assert trees == in_python, definition
        conn.rollback()
