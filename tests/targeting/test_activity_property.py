"""Property: random activities x random activity criteria give the same answer in Python and SQL.

Members get random activities (a few types, moments around `now` including the future and the
exact start of a window's first day in the program's time zone, amounts with up to four
decimals or none, properties of mixed JSON types); definitions mix activity criteria (every
measure and operator, `days` and from/to windows, property filters with negative operators)
with plain criteria, in include, exclude and nested groups. The Python evaluator (activities
as `member["activities"]` tuples) and the compiled SQL (over an `activities` table) must pick
the same members, on SQLite and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import activity_rule
from tests.targeting.tables import MemberDB, member_row
from tests.targeting.test_sql_property import SCALARS, criteria, members
from webapp.targeting import (
    OPERATORS_BY_TYPE,
    SegmentDefinitionError,
    behaviour,
    evaluate_segment,
    matches,
    parse_criterion,
)
from webapp.targeting.behaviour import amount_problem, measuring_any
from webapp.targeting.criteria import parse_definition, walk_criteria
from webapp.targeting.env import make_env
from webapp.targeting.sql import compile_criteria
from webapp.targeting.values import start_of_day_utc, zone

TYPES = ["purchase", "visit", "Purchase"]
ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/Los_Angeles", "Pacific/Kiritimati",
                         "Asia/Kolkata"])
NOW = st.sampled_from([
    datetime(2025, 3, 31, 10, 0, tzinfo=UTC),     # the day after Paris moves to summer time
    datetime(2025, 10, 26, 0, 30, tzinfo=UTC),    # Paris moves back this night
    datetime(2026, 6, 14, 22, 0, tzinfo=UTC),     # exactly midnight in Paris
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
])
DAYS = st.sampled_from([1, 2, 3, 7, 30, 31, 60, 365, 3660])
BACK = st.sampled_from([0, 1, 2, 6, 7, 29, 30, 31, 59, 60, 364, 365])
NUDGE = [timedelta(0), timedelta(microseconds=-1), timedelta(seconds=-1), timedelta(seconds=1),
         timedelta(hours=12), timedelta(hours=23, minutes=59, seconds=59)]
AMOUNTS_E4 = st.one_of(
    st.none(), st.sampled_from([0, 1, -1, 10_000, 25_000, 12_345, 5_000_000, -30_000]),
    st.integers(-10**9, 10**9), st.integers(-10**17, 10**17),
    st.sampled_from([10**18 - 1, -(10**18 - 1), 2**32, 2**32 - 1, -(2**32)]))
PROPERTY_VALUES = st.one_of(
    st.sampled_from(["coffee", "Coffee", "tea", "", "3", "sandwich"]), st.integers(-2, 5),
    st.sampled_from([1.5, 3.0, 2**40]), st.booleans(), st.none(),
    st.lists(st.sampled_from(["coffee", "tea", 3, True]), max_size=3),
    st.dictionaries(st.sampled_from(["b", "c"]), st.one_of(st.integers(0, 3), st.just("x")),
                    max_size=2))
PROPERTIES = st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["item", "store", "n", "a"]), PROPERTY_VALUES, max_size=3))
FILTER_FIELDS = ["properties.item", "properties.store", "properties.n", "properties.a",
                 "properties.a.b", "properties.missing"]
FILTER_VALUES = st.one_of(SCALARS, st.sampled_from(["coffee", "tea", "Coffee", 3, 1.5, True]))


def _local_midnight(now: datetime, tz: str, back: int) -> datetime:
    """The start (naive UTC) of the program-zone day `back` days before now's day."""
    zi = zone(tz) if tz != "UTC" else UTC
    today = now.astimezone(zi).date()
    return start_of_day_utc(today - timedelta(days=back), zi)


@st.composite
def moments(draw: Any, now: datetime, tz: str) -> datetime:
    """A naive UTC moment near a window edge, near now (in the past or future), or anywhere."""
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return _local_midnight(now, tz, draw(BACK)) + draw(st.sampled_from(NUDGE))
    if kind == 1:
        return naive_now + draw(st.sampled_from(
            [timedelta(0), timedelta(microseconds=1), timedelta(seconds=-1), timedelta(days=1),
             timedelta(seconds=1)]))
    if kind == 2:  # just after a from/to day starts or ends (future days too)
        return _local_midnight(now, tz, draw(st.integers(-3, 40))) + draw(
            st.sampled_from(NUDGE))
    return naive_now + timedelta(seconds=draw(st.integers(-120 * 86400, 5 * 86400)),
                                 microseconds=draw(st.integers(0, 999_999)))


@st.composite
def activity_lists(draw: Any, now: datetime, tz: str) -> list[tuple]:
    """A member's activities as the core reads them: (type, occurred_at, amount_e4, props)."""
    return draw(st.lists(st.tuples(st.sampled_from(TYPES), moments(now, tz), AMOUNTS_E4,
                                   PROPERTIES), max_size=8))


def _amount_value(draw: Any, people: list[dict[str, Any]]) -> Any:
    """A sum/min/max threshold: often a member's own amount or sum, or one ten-thousandth off."""
    seen = [a for m in people for _, _, a, _ in m["activities"] if a is not None]
    seen += [sum(a for _, _, a, _ in m["activities"] if a is not None) for m in people]
    e4 = draw(st.one_of(st.sampled_from(seen or [0]).flatmap(
        lambda v: st.sampled_from([v, v - 1, v + 1])), st.integers(-10**6, 10**6)))
    e4 = max(min(e4, 10**18 - 1), -(10**18 - 1))
    whole, frac = divmod(abs(e4), 10_000)
    sign = -1 if e4 < 0 else 1
    value = sign * float(f"{whole}.{frac:04d}")
    if frac == 0 or amount_problem(value):  # a float that cannot carry all the digits
        return sign * min(whole, 10**14 - 1)
    return value


def _moment_value(draw: Any, now: datetime, tz: str) -> Any:
    """A first/last threshold: days ago, a date or an ISO datetime near the edges."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return {"days_ago": draw(BACK)}
    moment = draw(moments(now, tz))
    if kind == 1:
        return moment.date().isoformat()
    return moment.isoformat() + "Z"


@st.composite
def windows(draw: Any, now: datetime, tz: str) -> dict[str, Any] | None:
    """No window, {"days": N}, or from/to dates around today (either side open)."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return None
    if kind == 1:
        return {"days": draw(DAYS)}
    today = now.astimezone(zone(tz) if tz != "UTC" else UTC).date()
    start = today - timedelta(days=draw(st.integers(-2, 40)))
    end = start + timedelta(days=draw(st.integers(0, 40)))
    window: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    if kind == 3:
        del window[draw(st.sampled_from(["from", "to"]))]
    return window


@st.composite
def property_filters(draw: Any) -> dict[str, Any]:
    """A valid property filter (negative operators included)."""
    for _ in range(30):
        field = draw(st.sampled_from(FILTER_FIELDS))
        op = draw(st.sampled_from(OPERATORS_BY_TYPE["any"]))
        raw: dict[str, Any] = {"field": field, "operator": op}
        if op not in ("exists", "not_exists"):
            raw["value"] = (draw(st.lists(FILTER_VALUES, max_size=3)) if op in ("in", "not_in")
                            else draw(FILTER_VALUES))
        if draw(st.integers(0, 4)) == 0:
            raw["case_insensitive"] = True
        try:
            parse_criterion({**raw, "field": "custom_fields." + field.split(".", 1)[1]})
        except SegmentDefinitionError:
            continue
        return raw
    return {"field": "properties.item", "operator": "exists"}


@st.composite
def activity_criteria(draw: Any, people: list[dict[str, Any]], now: datetime, tz: str
                      ) -> dict[str, Any]:
    """A valid activity criterion over the drawn members."""
    measure = draw(st.sampled_from(["count", "sum", "min", "max", "first", "last"]))
    op = draw(st.sampled_from([">=", ">", "<=", "<", "equals", "not_equals"]))
    if measure == "count":
        value: Any = draw(st.sampled_from([0, 1, 2, 3]))
    elif measure in ("sum", "min", "max"):
        value = _amount_value(draw, people)
    else:
        value = _moment_value(draw, now, tz)
    spec: dict[str, Any] = {"type": draw(st.sampled_from(TYPES))}
    window = draw(windows(now, tz))
    if window is not None:
        spec["window"] = window
    if draw(st.booleans()):
        spec["where"] = draw(st.lists(property_filters(), min_size=1, max_size=2))
    raw = {"field": f"activity.{measure}", "operator": op, "value": value, "activity": spec}
    parse_criterion(raw)  # every drawn criterion is valid
    return raw


def items(people: list[dict[str, Any]], now: datetime, tz: str, depth: int = 0
          ) -> st.SearchStrategy[Any]:
    """An activity criterion, now and then a plain one, or a group of them."""
    leaf = st.one_of(activity_criteria(people, now, tz), activity_criteria(people, now, tz),
                     activity_criteria(people, now, tz), criteria(people))
    if depth >= 2:
        return leaf
    group = st.builds(lambda mode, xs: {mode: xs}, st.sampled_from(["all", "any", "none"]),
                      st.lists(items(people, now, tz, depth + 1), min_size=1, max_size=3))
    return st.one_of(leaf, leaf, group)


@st.composite
def scenarios(draw: Any, max_include: int = 3, max_exclude: int = 2) -> dict[str, Any]:
    """A clock, a zone, members with activities and a definition over them."""
    now, tz = draw(NOW), draw(ZONES)
    people = draw(st.lists(members(now), min_size=1, max_size=6))
    for m in people:
        m["activities"] = tuple(draw(activity_lists(now, tz)))
    include = draw(st.lists(items(people, now, tz), max_size=max_include))
    exclude = draw(st.lists(items(people, now, tz), max_size=max_exclude))
    return {"definition": {"kind": "dynamic", "include": include, "exclude": exclude},
            "people": people, "now": now, "tz": tz}


def same_answers(db: MemberDB, definition: dict[str, Any], people: list[dict[str, Any]],
                 now: datetime, tz: str) -> None:
    """SQL over the tables selects exactly the members the Python evaluator matches."""
    rows = [member_row({k: v for k, v in m.items() if k != "email"}, i)
            for i, m in enumerate(people)]
    for m, row in zip(people, rows, strict=True):
        m["email"] = None
        m["external_id"] = row["external_id"]
    acts = [{"member_id": row["id"], "type": kind, "occurred_at": at, "amount_e4": amount,
             "properties": props}
            for m, row in zip(people, rows, strict=True)
            for kind, at, amount, props in m["activities"]]
    expr = compile_criteria(definition, db.members, dialect=db.dialect, now=now, tz=tz,
                            memberships=db.memberships, activities=db.activities)
    # the same, each member's activities read on their own (a few members' refresh)
    own = compile_criteria(definition, db.members, dialect=db.dialect, now=now, tz=tz,
                           memberships=db.memberships, activities=db.activities,
                           per_member=True)
    with db.engine.begin() as conn:
        db.reset(conn)
        conn.execute(db.members.insert(), rows)
        if acts:
            conn.execute(db.activities.insert(), acts)
        in_sql = {r[0] for r in conn.execute(sa.select(db.members.c.id).where(expr))}
        per_member = {r[0] for r in conn.execute(sa.select(db.members.c.id).where(own))}
        conn.rollback()
    assert per_member == in_sql
    in_python = {row["id"] for m, row in zip(people, rows, strict=True)
                 if matches(definition, m, now=now, tz=tz, memberships=set())}
    trees = {row["id"] for m, row in zip(people, rows, strict=True)
             if evaluate_segment(definition, m, now=now, tz=tz,
                                 memberships=set()).explanation["passed"]}
    assert trees == in_python
    assert in_sql == in_python, {
        "sql_only": [people[rows.index(r)] for r in rows if r["id"] in in_sql - in_python],
        "python_only": [people[rows.index(r)] for r in rows if r["id"] in in_python - in_sql],
    }


SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(scenario=scenarios(max_include=1, max_exclude=1))
def test_single_activity_criteria_agree(member_db: MemberDB, scenario: dict[str, Any]) -> None:
    """One item at a time (include and/or exclude), where a mismatch is easy to read."""
    same_answers(member_db, scenario["definition"], scenario["people"], scenario["now"],
                 scenario["tz"])


@SETTINGS
@given(scenario=scenarios())
def test_activity_definitions_agree(member_db: MemberDB, scenario: dict[str, Any]) -> None:
    """Whatever the activities, criteria and nesting, SQL selects the members Python matches."""
    same_answers(member_db, scenario["definition"], scenario["people"], scenario["now"],
                 scenario["tz"])


# --- plain cases of the semantics -------------------------------------------------------------

PARIS_NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)          # 11:00 in Paris (CEST, UTC+2)
PARIS_START = datetime(2026, 6, 13, 22, 0)                  # 14 June 00:00 in Paris, as UTC


def _purchase(at: datetime, amount_e4: int | None = None, props: dict | None = None) -> tuple:
    return ("purchase", at, amount_e4, props)


def _count_2_days(op: str = ">=", value: int = 1) -> dict[str, Any]:
    return {"include": [{"field": "activity.count", "operator": op, "value": value,
                         "activity": {"type": "purchase", "window": {"days": 2}}}]}


def _both(db: MemberDB, definition: dict[str, Any], acts: list[tuple], now: datetime,
          tz: str) -> bool:
    """The answer for one member with these activities, checked equal in Python and SQL."""
    member = {"tier": "gold", "activities": tuple(acts)}
    same_answers(db, definition, [member], now, tz)
    return matches(definition, member, now=now, tz=tz)


def test_window_starts_at_the_start_of_the_day_in_paris(member_db: MemberDB) -> None:
    """A 2-day window in Paris starts at local midnight of yesterday, inclusive."""
    d = _count_2_days()
    assert _both(member_db, d, [_purchase(PARIS_START)], PARIS_NOW, "Europe/Paris")
    assert not _both(member_db, d, [_purchase(PARIS_START - timedelta(microseconds=1))],
                     PARIS_NOW, "Europe/Paris")
    # In UTC the same moment is on 13 June, outside the window.
    assert not _both(member_db, d, [_purchase(PARIS_START)], PARIS_NOW, "UTC")


def test_from_to_window_is_whole_paris_days(member_db: MemberDB) -> None:
    """`to` includes the whole last local day and no more."""
    d = {"include": [{"field": "activity.count", "operator": ">=", "value": 1,
                      "activity": {"type": "purchase",
                                   "window": {"from": "2026-06-10", "to": "2026-06-13"}}}]}
    last = PARIS_START - timedelta(microseconds=1)  # 13 June 23:59:59.999999 in Paris
    assert _both(member_db, d, [_purchase(last)], PARIS_NOW, "Europe/Paris")
    assert not _both(member_db, d, [_purchase(PARIS_START)], PARIS_NOW, "Europe/Paris")
    assert _both(member_db, d, [_purchase(datetime(2026, 6, 9, 22, 0))], PARIS_NOW,
                 "Europe/Paris")
    assert not _both(member_db, d, [_purchase(datetime(2026, 6, 9, 21, 59, 59))], PARIS_NOW,
                     "Europe/Paris")


def test_future_activity_is_not_counted(member_db: MemberDB) -> None:
    """An activity after now is not counted, in a window or over all time, until it happens."""
    naive_now = PARIS_NOW.replace(tzinfo=None)
    future = [_purchase(naive_now + timedelta(seconds=1), 10_000)]
    assert not _both(member_db, _count_2_days(), future, PARIS_NOW, "Europe/Paris")
    ever = {"include": [{"field": "activity.count", "operator": "equals", "value": 0,
                         "activity": {"type": "purchase"}}]}
    assert _both(member_db, ever, future, PARIS_NOW, "Europe/Paris")
    assert _both(member_db, _count_2_days(), [_purchase(naive_now)], PARIS_NOW, "Europe/Paris")
    later = PARIS_NOW + timedelta(seconds=1)
    assert _both(member_db, _count_2_days(), future, later, "Europe/Paris")


def test_sum_of_no_activities_is_zero(member_db: MemberDB) -> None:
    """Sum is 0 without activities (and without amounts), so `sum <= 0` holds, `sum < 0` not."""
    for acts in ([], [_purchase(PARIS_START)]):
        for op, value, expected in (("<=", 0, True), ("equals", 0, True), ("<", 0, False),
                                    (">=", 0.0001, False)):
            d = {"include": [{"field": "activity.sum", "operator": op, "value": value,
                              "activity": {"type": "purchase"}}]}
            assert _both(member_db, d, acts, PARIS_NOW, "Europe/Paris") is expected, (acts, op)


def test_min_of_no_activities_fails_every_operator(member_db: MemberDB) -> None:
    """min (and max, first, last) of nothing is missing: no comparison holds in an include,
    every one holds in an exclude."""
    for measure, value in (("min", 0), ("max", 0), ("first", {"days_ago": 0}),
                           ("last", "2000-01-01")):
        for op in (">=", ">", "<=", "<", "equals"):
            c = {"field": f"activity.{measure}", "operator": op, "value": value,
                 "activity": {"type": "purchase"}}
            no_amount = [] if measure in ("first", "last") else [_purchase(PARIS_START)]
            for acts in ([], no_amount):
                assert not _both(member_db, {"include": [c]}, acts, PARIS_NOW, "UTC")
                assert _both(member_db, {"exclude": [c]}, acts, PARIS_NOW, "UTC")
        # not_equals on a missing value holds, as for a missing attribute.
        c = {"field": f"activity.{measure}", "operator": "not_equals", "value": value,
             "activity": {"type": "purchase"}}
        assert _both(member_db, {"include": [c]}, [], PARIS_NOW, "UTC")
        assert not _both(member_db, {"exclude": [c]}, [], PARIS_NOW, "UTC")


def test_amounts_are_exact(member_db: MemberDB) -> None:
    """0.1 + 0.2 sums to exactly 0.3 and large amounts do not lose ten-thousandths."""
    small = [_purchase(PARIS_START, 1_000), _purchase(PARIS_START, 2_000)]
    for op, value, expected in (("equals", 0.3, True), (">", 0.3, False), (">=", 0.3001, False),
                                ("<", 0.3001, True)):
        d = {"include": [{"field": "activity.sum", "operator": op, "value": value,
                          "activity": {"type": "purchase"}}]}
        assert _both(member_db, d, small, PARIS_NOW, "UTC") is expected, (op, value)
    big = [_purchase(PARIS_START, 99_999_999_999_999_999), _purchase(PARIS_START, 1)]
    exact = {"include": [{"field": "activity.sum", "operator": "equals",
                          "value": 10_000_000_000_000, "activity": {"type": "purchase"}}]}
    assert _both(member_db, exact, big, PARIS_NOW, "UTC")
    fine = [_purchase(PARIS_START, 1_234_567_891_234)]  # 123,456,789.1234
    for op, value, expected in ((">=", 123_456_789.1234, True), (">", 123_456_789.1234, False),
                                (">=", 123_456_789.1235, False)):
        d = {"include": [{"field": "activity.max", "operator": op, "value": value,
                          "activity": {"type": "purchase"}}]}
        assert _both(member_db, d, fine, PARIS_NOW, "UTC") is expected, (op, value)


def test_window_day_count_in_paris_spans_a_clock_change() -> None:
    """30 days back from 31 March 2025 in Paris starts at 2 March 00:00 CET (23:00 UTC)."""
    d = {"include": [{"field": "activity.count", "operator": ">=", "value": 1,
                      "activity": {"type": "purchase", "window": {"days": 30}}}]}
    now = datetime(2025, 3, 31, 10, 0, tzinfo=UTC)
    start = datetime(2025, 3, 1, 23, 0)
    assert date(2025, 3, 31) - timedelta(days=29) == date(2025, 3, 2)
    assert matches(d, {"activities": (_purchase(start),)}, now=now, tz="Europe/Paris")
    assert not matches(d, {"activities": (_purchase(start - timedelta(seconds=1)),)}, now=now,
                       tz="Europe/Paris")


def test_sums_past_64_bits_stay_exact(member_db: MemberDB) -> None:
    """Ten of the largest amounts sum past 2**63 ten-thousandths: still exact, never an error
    (SQLite's integer sum would overflow)."""
    largest = 999_999_999_999_999_999  # 99,999,999,999,999.9999, the largest valid amount
    acts = [_purchase(PARIS_START, largest)] * 10 + [_purchase(PARIS_START, -largest)]
    assert 10 * largest > 2**63  # the running sum passes it before the refund
    for op, value, expected in (("equals", 0, False), (">", 99_999_999_999_999, True),
                                ("<", 0, False), (">=", -99_999_999_999_999, True),
                                ("<=", 99_999_999_999_999, False)):
        d = {"include": [{"field": "activity.sum", "operator": op, "value": value,
                          "activity": {"type": "purchase"}}]}
        assert _both(member_db, d, acts, PARIS_NOW, "UTC") is expected, (op, value)


def test_the_compiled_predicate_agrees_with_the_test() -> None:
    """`pred` on the shown measure (what `get` returns) decides as the criterion's test."""
    from webapp.targeting.compiler import compile_criterion
    from webapp.targeting.criteria import parse_criterion
    from webapp.targeting.env import make_env

    env = make_env(PARIS_NOW, "Europe/Paris")
    acts = (_purchase(PARIS_START, 125_000), _purchase(PARIS_START - timedelta(days=3), 130_000))
    member = {"activities": acts}
    for measure, value in (("count", 2), ("sum", 25), ("min", 12.5), ("max", 13),
                           ("first", {"days_ago": 2}), ("last", "2026-06-14")):
        for op in (">=", ">", "<=", "<", "equals", "not_equals"):
            c = compile_criterion(parse_criterion({
                "field": f"activity.{measure}", "operator": op, "value": value,
                "activity": {"type": "purchase"}}))
            assert c.pred(c.get(member, env), env) == c.test(member, env), (measure, op)


# --- which new activities can change an answer ------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_new_activities_no_criterion_measures_change_no_answer(scenario: dict[str, Any],
                                                                data: Any) -> None:
    """`measuring_any` (what decides which members recording activities re-evaluates) picks a
    member exactly when one of its activity criteria measures more with the new activities
    than without; a member it leaves out has every measure, and so the answer, unchanged."""
    now, tz, definition = scenario["now"], scenario["tz"], scenario["definition"]
    env = make_env(now, tz)
    criteria = [c for c in walk_criteria(parse_definition(definition).include
                                         + parse_definition(definition).exclude)
                if c.kind == "activity"]
    new: dict[str, tuple] = {}
    old: dict[str, tuple] = {}
    for i, m in enumerate(scenario["people"]):
        acts = m["activities"]
        cut = data.draw(st.integers(0, len(acts)))
        old[str(i)], new[str(i)] = acts[:cut], acts[cut:]
    due = measuring_any(criteria, new, env)

    def counted(acts: tuple, c: Any) -> int:
        tests = behaviour._filter_tests(c.activity)
        return behaviour.measure(acts, c.activity, tests, env).count
    for i, m in enumerate(scenario["people"]):
        key = str(i)
        grew = any(counted(old[key] + new[key], c) > counted(old[key], c) for c in criteria)
        assert (key in due) == grew
        if key not in due:
            before = {**m, "activities": old[key]}
            after = {**m, "activities": old[key] + new[key]}
            assert matches(definition, before, now=now, tz=tz, memberships=set()) == \
                matches(definition, after, now=now, tz=tz, memberships=set())


@st.composite
def joining_cases(draw: Any) -> dict[str, Any]:
    """One member's activities before and after some new ones, and a definition holding one
    activity criterion (included, excluded or in a `none` group) next to a plain one."""
    now, tz = draw(NOW), draw(ZONES)
    person = draw(members(now))
    old = tuple(draw(activity_lists(now, tz)))
    new = tuple(draw(activity_lists(now, tz).filter(bool)))
    person["activities"] = old + new
    c = draw(activity_criteria([person], now, tz))
    if draw(st.booleans()):
        c = {"none": [c]}
    place = draw(st.sampled_from(["include", "exclude"]))
    definition = {"kind": "dynamic", "include": [], "exclude": []}
    definition[place].append(c)
    if draw(st.booleans()):
        definition["include"].append(draw(criteria([person])))
    return {"definition": definition, "person": person, "old": old, "new": new, "now": now,
            "tz": tz}


@settings(max_examples=1500, deadline=None)
@given(case=st.one_of(joining_cases(), joining_cases(), scenarios()), data=st.data())
def test_a_definition_that_only_joins_never_loses_a_member(case: dict[str, Any],
                                                           data: Any) -> None:
    """When `only_joins` says recording a member's new activities can only move them into a
    segment, a member in before is in after (so those already in need no re-evaluating)."""
    now, tz, definition = case["now"], case["tz"], case["definition"]
    if "person" in case:
        splits = [(case["person"], case["old"], case["new"])]
    else:
        splits = []
        for m in case["people"]:
            cut = data.draw(st.integers(0, len(m["activities"])))
            splits.append((m, m["activities"][:cut], m["activities"][cut:]))
    parsed = parse_definition(definition)
    for m, old, new in splits:
        if not behaviour.only_joins(parsed, new):
            continue
        before = matches(definition, {**m, "activities": old}, now=now, tz=tz,
                         memberships=set())
        after = matches(definition, {**m, "activities": old + new}, now=now, tz=tz,
                        memberships=set())
        assert after or not before


def _only_joins(include: list, exclude: list, new: list[tuple]) -> bool:
    return behaviour.only_joins(parse_definition(
        {"kind": "dynamic", "include": include, "exclude": exclude}), new)


def _on(measure: str, op: str, value: Any) -> dict[str, Any]:
    return activity_rule(measure, op, value, days=30)


def test_which_definitions_only_join() -> None:
    now = datetime(2026, 6, 1, 12, 0)
    bought = [_purchase(now, 25_000)]
    refund = [_purchase(now, -25_000)]
    tier = {"field": "tier", "operator": "equals", "value": "gold"}
    assert _only_joins([_on("count", ">=", 3), _on("sum", ">=", 50), tier], [], bought)
    assert _only_joins([_on("max", ">", 10), _on("last", ">=", {"days_ago": 7})], [], bought)
    assert _only_joins([_on("min", "<=", 5), _on("first", "<", "2026-01-01")], [], bought)
    assert _only_joins([], [_on("count", "<", 1)], bought)        # "did not buy" excluded
    assert _only_joins([{"none": [_on("count", "<=", 2)]}], [], bought)
    assert _only_joins([_on("sum", "<=", 50)], [], refund)         # refunds only lower it
    assert _only_joins([_on("count", "<=", 2)], [], [("visit", now, None, None)])  # not read
    assert not _only_joins([_on("count", "<=", 2)], [], bought)   # at most 2: may leave
    assert not _only_joins([_on("count", "equals", 3)], [], bought)
    assert not _only_joins([_on("sum", ">=", 50)], [], refund)
    assert not _only_joins([_on("sum", ">=", 50)], [], bought + refund)
    assert not _only_joins([_on("max", "<=", 10)], [], bought)    # missing, then true, false
    assert not _only_joins([_on("min", ">=", 10)], [], bought)
    assert not _only_joins([], [_on("count", ">=", 1)], bought)
    assert not _only_joins([{"any": [_on("count", ">=", 1), _on("count", "<", 5)]}], [],
                           bought)
    assert not _only_joins([{"field": "segment", "operator": "in", "value": [1]}], [], bought)
