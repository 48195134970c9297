"""Segment membership for one member, with a full explanation (SPEC §3).

Explanation nodes all have the same keys:

``kind``
    what was checked: ``segment``, ``override``, ``list``, ``include``, ``exclude``,
    ``criterion`` (and, from :mod:`webapp.targeting.visibility`, ``offer``, ``reward``,
    ``status``, ``window``, ``audience``, ``required_segments``, ``points``);
``label``
    human words for the check ("points at least 1,000", "has badge banned");
``passed``
    whether the member passed this check. In an ``exclude`` group a criterion *passes* when it
    does **not** hold (holding it is what excludes the member);
``actual``
    the member's value (JSON; dates as ISO strings; None when missing);
``expected``
    the criterion's value as written (None where there is none);
``gap``
    for a failed numeric or date check, how far the member is from passing
    ("needs 120 more points", "turns 18 in 37 days", "joined 12 days too late"), else None;
``children``
    the nodes this check is made of.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from webapp.targeting import schema as s
from webapp.targeting.criteria import (
    Criterion,
    Definition,
    criterion_label,
    describe_definition,
    parse_definition,
)
from webapp.targeting.errors import SegmentDefinitionError
from webapp.targeting.values import (
    age_on,
    anniversary,
    fold,
    format_number,
    is_number,
    jsonable,
    make_equals,
    make_in,
    member_date,
    member_datetime,
    zone,
)

Member = dict[str, Any]


def node(kind: str, label: str, passed: bool, actual: Any = None, expected: Any = None,
         gap: str | None = None, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One explanation node (see the module docstring for the keys)."""
    return {"kind": kind, "label": label, "passed": passed, "actual": actual,
            "expected": expected, "gap": gap, "children": children or []}


@dataclass(slots=True)
class Env:
    """What an evaluation needs besides the member: the clock, the zone and other memberships."""

    now: datetime                      # naive UTC
    tz: tzinfo
    today: date
    in_segment: Callable[[int], bool] | None = None
    explain_segment: Callable[[int], dict[str, Any] | None] | None = None
    memo: dict[int, Any] = field(default_factory=dict)


def make_env(now: datetime | None = None, tz: str | tzinfo | None = "UTC",
             memberships: Collection[int] | Callable[[int], bool] | None = None) -> Env:
    """An evaluation environment (`now` naive = UTC; `memberships` answers `segment` criteria)."""
    zi = zone(tz)
    if now is None:
        now = datetime.now(UTC)
    if now.tzinfo is None:
        now_utc = now
        aware = now.replace(tzinfo=UTC)
    else:
        aware = now.astimezone(UTC)
        now_utc = aware.replace(tzinfo=None)
    today = aware.astimezone(zi).date()
    in_segment: Callable[[int], bool] | None
    if memberships is None:
        in_segment = None
    elif callable(memberships):
        in_segment = memberships
    else:
        ids = frozenset(memberships)
        in_segment = ids.__contains__
    return Env(now=now_utc, tz=zi, today=today, in_segment=in_segment)


# --- compiling criteria -----------------------------------------------------------------------

Test = Callable[[Member, Env], bool]


@dataclass(frozen=True, slots=True)
class CompiledCriterion:
    """A criterion with its fast test and the getter its explanation reads."""

    criterion: Criterion
    test: Test
    get: Callable[[Member, Env], Any]
    label: str


def _getter(c: Criterion) -> Callable[[Member, Env], Any]:
    name = c.field
    if c.kind == s.ANY:
        keys = c.path
        if len(keys) == 1:
            key = keys[0]

            def get_custom1(m: Member, env: Env) -> Any:
                cf = m.get("custom_fields")
                return cf.get(key) if cf.__class__ is dict else None
            return get_custom1

        def get_custom(m: Member, env: Env) -> Any:
            v = m.get("custom_fields")
            for k in keys:
                if v.__class__ is not dict:
                    return None
                v = v.get(k)
            return v
        return get_custom
    if name == "email":
        def get_email(m: Member, env: Env) -> Any:
            v = m.get("email")
            return v.lower() if isinstance(v, str) else v
        return get_email
    if name == "age":
        def get_age(m: Member, env: Env) -> Any:
            b = m.get("birthday")
            if b is None:
                return None
            b = member_date(b)
            return None if b is None else age_on(b, env.today)
        return get_age
    if c.kind == s.DATE:
        def get_date(m: Member, env: Env) -> Any:
            v = m.get(name)
            return None if v is None else member_date(v)
        return get_date
    if c.kind == s.DATETIME:
        def get_datetime(m: Member, env: Env) -> Any:
            v = m.get(name)
            return None if v is None else member_datetime(v)
        return get_datetime
    if c.kind == s.SEGMENT:
        ids = tuple(c.value)

        def get_segments(m: Member, env: Env) -> Any:
            check = _segment_check(env, c)
            return [i for i in ids if check(i)]
        return get_segments

    def get_plain(m: Member, env: Env) -> Any:
        return m.get(name)
    return get_plain


def _segment_check(env: Env, c: Criterion) -> Callable[[int], bool]:
    if env.in_segment is None:
        raise SegmentDefinitionError(
            f"{c.where or 'criterion'} ({c.field} {c.operator} {c.value}): segment criteria need "
            "the member's memberships")
    return env.in_segment


def _threshold(c: Criterion) -> Callable[[Env], Any]:
    dv = c.date_value
    assert dv is not None
    if c.kind == s.DATE:
        if dv.days_ago is None:
            fixed = dv.as_date(date.min)
            return lambda env: fixed
        return lambda env: dv.as_date(env.today)
    if dv.days_ago is None and dv.moment is not None and dv.moment.tzinfo is not None:
        fixed_dt = dv.as_utc(datetime.min, UTC)
        return lambda env: fixed_dt
    key = id(c)

    def resolve(env: Env) -> Any:
        got = env.memo.get(key)
        if got is None:
            got = env.memo[key] = dv.as_utc(env.now, env.tz)
        return got
    return resolve


_ORDER = {
    s.GT: lambda a, b: a > b, s.GTE: lambda a, b: a >= b,
    s.LT: lambda a, b: a < b, s.LTE: lambda a, b: a <= b,
}


def _positive(c: Criterion) -> Callable[[Any, Env], bool]:
    """The positive operator's test on a present (non-null) member value."""
    op = c.operator
    value = c.value
    email = c.field == "email"
    fold_fn: Callable[[str], str] | None = None
    if email:
        value = _lower_all(value)
    elif c.case_insensitive:
        fold_fn = fold
    if op == s.EXISTS:
        return lambda v, env: True
    if c.kind == s.SEGMENT:
        ids = tuple(value)

        def in_any(v: Any, env: Env) -> bool:
            check = _segment_check(env, c)
            return any(check(i) for i in ids)
        return in_any
    if c.kind in (s.DATE, s.DATETIME):
        thr = _threshold(c)
        cls = date if c.kind == s.DATE else datetime
        if op == s.EQUALS:
            return lambda v, env: v.__class__ is cls and v == thr(env)
        cmp = _ORDER[op]
        return lambda v, env: v.__class__ is cls and cmp(v, thr(env))
    if op == s.EQUALS:
        eq = make_equals(value, fold_fn)
        return lambda v, env: eq(v)
    if op == s.IN:
        one = make_in(value, fold_fn)

        def in_(v: Any, env: Env) -> bool:
            if v.__class__ is list:
                return any(one(x) for x in v)
            return one(v)
        return in_
    if op == s.CONTAINS:
        elem = make_equals(value, fold_fn)
        if isinstance(value, str):
            sub = fold_fn(value) if fold_fn else value

            def contains_str(v: Any, env: Env) -> bool:
                if isinstance(v, str):
                    return sub in (fold_fn(v) if fold_fn else v)
                if v.__class__ is list:
                    return any(elem(x) for x in v)
                return False
            return contains_str

        def contains_elem(v: Any, env: Env) -> bool:
            return v.__class__ is list and any(elem(x) for x in v)
        return contains_elem
    cmp = _ORDER[op]
    return lambda v, env: is_number(v) and cmp(v, value)


def _lower_all(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [_lower_all(v) for v in value]
    return value


def compile_criterion(c: Criterion, segment_names: dict[Any, str] | None = None
                      ) -> CompiledCriterion:
    """Turn a validated criterion into a fast test `test(member, env) -> bool`."""
    get = _getter(c)
    negative = c.operator in s.NEGATIVE
    positive_c = c
    if negative:
        positive_c = Criterion(field=c.field, operator=s.NEGATIVE[c.operator], value=c.value,
                               case_insensitive=c.case_insensitive, kind=c.kind, path=c.path,
                               where=c.where, date_value=c.date_value)
    pred = _positive(positive_c)
    test: Test
    if c.kind == s.SEGMENT:
        def test_segment(m: Member, env: Env) -> bool:
            return pred(None, env)
        test = test_segment
    elif c.kind in (s.STRING, s.INTEGER, s.LIST) and c.field not in ("email", "age"):
        name = c.field
        if negative:
            def test(m: Member, env: Env) -> bool:
                v = m.get(name)
                return v is None or not pred(v, env)
        else:
            def test(m: Member, env: Env) -> bool:
                v = m.get(name)
                return v is not None and pred(v, env)
    elif negative:
        def test(m: Member, env: Env) -> bool:
            v = get(m, env)
            return v is None or not pred(v, env)
    else:
        def test(m: Member, env: Env) -> bool:
            v = get(m, env)
            return v is not None and pred(v, env)
    if c.kind == s.SEGMENT and negative:
        inner = test

        def test(m: Member, env: Env) -> bool:  # noqa: F811 - wraps the positive test
            return not inner(m, env)
    return CompiledCriterion(criterion=c, test=test, get=get,
                             label=criterion_label(c, segment_names))


# --- gaps -----------------------------------------------------------------------------------

_FLIP = {s.GTE: s.LT, s.GT: s.LTE, s.LTE: s.GT, s.LT: s.GTE}
_UNITS = {"points": "points", "xp": "XP", "coins": "coins"}
_DATE_VERBS = {"created_at": "joined", "updated_at": "updated", "birthday": "born"}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _duration(delta: timedelta) -> str:
    secs = delta.total_seconds()
    if secs >= 86400:
        return _plural(math.ceil(secs / 86400), "day")
    if secs >= 3600:
        return _plural(math.ceil(secs / 3600), "hour")
    if secs >= 60:
        return _plural(math.ceil(secs / 60), "minute")
    return _plural(max(1, math.ceil(secs)), "second")


def gap_for(c: Criterion, op: str, actual: Any, env: Env, birthday: date | None = None
            ) -> str | None:
    """How far `actual` is from passing `field op value`; None when it is not a number or date."""
    value = c.value
    if actual is None:
        return None
    if c.field == "age" and isinstance(actual, int):
        return _age_gap(c, op, actual, env, birthday)
    if c.kind in (s.DATE, s.DATETIME) and c.date_value is not None:
        if op not in s.ORDERING:
            return None
        thr = _threshold(c)(env)
        if actual.__class__ is not thr.__class__:
            return None
        verb = _DATE_VERBS[c.field]
        if op in (s.GTE, s.GT):
            delta = thr - actual
            if delta <= timedelta(0):
                return f"{verb} exactly at the limit; must be after it"
            return f"{verb} {_duration(delta)} too early"
        delta = actual - thr
        if delta <= timedelta(0):
            return f"{verb} exactly at the limit; must be before it"
        return f"{verb} {_duration(delta)} too late"
    if not is_number(actual) or not is_number(value):
        if c.kind == s.ANY and op in s.ORDERING:
            return f"is {_json_type(actual)}, not a number"
        return None
    if c.kind == s.INTEGER:
        unit = _UNITS.get(c.field, c.field)
        low = {s.GTE: math.ceil(value), s.GT: math.floor(value) + 1, s.EQUALS: value}.get(op)
        high = {s.LTE: math.floor(value), s.LT: math.ceil(value) - 1, s.EQUALS: value}.get(op)
        if low is not None and actual < low:
            return f"needs {format_number(low - actual)} more {unit}"
        if high is not None and actual > high:
            return f"has {format_number(actual - high)} {unit} too many"
        return None
    if op not in s.ORDERING:
        return None
    if op in (s.GTE, s.GT):
        more = "" if op == s.GTE else "more than "
        return f"needs {more}{format_number(value - actual)} more"
    if op == s.LT and actual == value:
        return f"must be under {format_number(value)}"
    return f"is {format_number(actual - value)} over"


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return "not a number"


def _age_gap(c: Criterion, op: str, age: int, env: Env, birthday: date | None) -> str | None:
    value = c.value
    if not is_number(value):
        return None
    low = {s.GTE: math.ceil(value), s.GT: math.floor(value) + 1}.get(op)
    high = {s.LTE: math.floor(value), s.LT: math.ceil(value) - 1}.get(op)
    if op == s.EQUALS:
        if value != int(value):
            return None
        low = high = int(value)
    if low is not None and age < low:
        when = anniversary(birthday, low) if birthday else None
        if when is None:
            return f"needs to be {low} years old"
        days = (when - env.today).days
        return f"turns {low} in {_plural(days, 'day')}"
    if high is not None and age > high:
        return f"is {_plural(age - high, 'year')} too old"
    return None


# --- definitions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledDefinition:
    """A validated definition with compiled criteria."""

    definition: Definition
    include: tuple[CompiledCriterion, ...]
    exclude: tuple[CompiledCriterion, ...]
    description: str
    match: Test


def compile_definition(segment: Any, segment_names: dict[Any, str] | None = None
                       ) -> CompiledDefinition:
    """Validate and compile a definition (the rule part) once, for many evaluations."""
    d = segment if isinstance(segment, Definition) else parse_definition(segment)
    inc = tuple(compile_criterion(c, segment_names) for c in d.include)
    exc = tuple(compile_criterion(c, segment_names) for c in d.exclude)
    inc_tests = tuple(c.test for c in inc)
    exc_tests = tuple(c.test for c in exc)
    if d.kind == "static":
        def match(m: Member, env: Env) -> bool:
            return False
    elif len(inc_tests) == 1 and not exc_tests:
        match = inc_tests[0]
    else:
        def match(m: Member, env: Env) -> bool:
            for t in inc_tests:
                if not t(m, env):
                    return False
            for t in exc_tests:
                if t(m, env):
                    return False
            return True
    return CompiledDefinition(definition=d, include=inc, exclude=exc,
                              description=describe_definition(d, segment_names), match=match)


_CACHE: dict[str, CompiledDefinition] = {}
_CACHE_LIMIT = 4096


def cached_definition(segment: dict[str, Any]) -> CompiledDefinition:
    """The compiled form of a definition dict, cached by its exact JSON text."""
    try:
        # JSON text, not ==: True == 1 and 1 == 1.0 in Python, but not as criteria values.
        key = json.dumps(segment, sort_keys=True)
    except (TypeError, ValueError):
        return compile_definition(segment)
    compiled = _CACHE.get(key)
    if compiled is None:
        compiled = compile_definition(segment)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = compiled
    return compiled


def compile_segment(definition: Any, *, now: datetime | None = None, tz: str | tzinfo = "UTC"
                    ) -> Callable[..., bool]:
    """A fast matcher for bulk use: `matcher(member, memberships=None) -> bool` (rules only).

    `now` is fixed when the matcher is made; a static definition never matches (its members are
    its list); overrides are not applied.
    """
    compiled = compile_definition(definition)
    env = make_env(now, tz)
    match = compiled.match

    def matcher(member: Member, memberships: Collection[int] | None = None) -> bool:
        if memberships is None:
            return match(member, env)
        return match(member, Env(now=env.now, tz=env.tz, today=env.today,
                                 in_segment=frozenset(memberships).__contains__))
    return matcher


def criterion_node(cc: CompiledCriterion, m: Member, env: Env, *, excluding: bool = False
                   ) -> dict[str, Any]:
    """The explanation node of one criterion for one member."""
    c = cc.criterion
    holds = cc.test(m, env)
    passed = not holds if excluding else holds
    actual = cc.get(m, env)
    children: list[dict[str, Any]] = []
    if c.kind == s.SEGMENT and env.explain_segment is not None:
        for sid in c.value:
            child = env.explain_segment(sid)
            if child is not None:
                children.append(child)
    gap = None
    if not passed and c.kind != s.SEGMENT:
        op = c.operator
        if excluding:
            op = _FLIP.get(op, "")
        birthday = member_date(m.get("birthday")) if c.field == "age" else None
        gap = gap_for(c, op, actual, env, birthday)
        if gap is None and actual is None and op not in (s.NOT_EXISTS, ""):
            gap = f"has no {c.field if c.kind != s.ANY else 'value for ' + c.field}"
    label = cc.label if not excluding else f"excluded when {cc.label}"
    return node("criterion", label, passed, jsonable(actual), c.value, gap, children)


def explain_rules(compiled: CompiledDefinition, m: Member, env: Env) -> tuple[bool, list[dict]]:
    """Whether the rules match, and the include/exclude nodes that say why."""
    inc_nodes = [criterion_node(cc, m, env) for cc in compiled.include]
    exc_nodes = [criterion_node(cc, m, env, excluding=True) for cc in compiled.exclude]
    inc_ok = all(n["passed"] for n in inc_nodes)
    exc_ok = all(n["passed"] for n in exc_nodes)
    nodes = [node("include", "matches every include criterion" if inc_nodes
                  else "no include criteria: everyone matches", inc_ok, children=inc_nodes)]
    if exc_nodes:
        nodes.append(node("exclude", "matches no exclude criterion", exc_ok, children=exc_nodes))
    return inc_ok and exc_ok, nodes


def explain_membership(compiled: CompiledDefinition, m: Member, env: Env, *, on_list: bool,
                       override: str | None, label: str | None = None,
                       override_node: dict[str, Any] | None = None) -> tuple[bool, dict]:
    """Effective membership (SPEC §3 precedence) and its explanation node."""
    children: list[dict[str, Any]] = []
    if override is not None:
        if override not in ("add", "block"):
            raise ValueError(f"override is 'add', 'block' or None, not {override!r}")
        children.append(override_node or node(
            "override", "blocked by override" if override == "block" else "added by override",
            override == "add", actual=override))
    if compiled.definition.kind == "static":
        matched = on_list
        children.append(node("list", "on the segment's list" if on_list
                             else "not on the segment's list", on_list, on_list, True))
    else:
        matched, rule_nodes = explain_rules(compiled, m, env)
        children.extend(rule_nodes)
    if override == "block":
        matched = False
    elif override == "add":
        matched = True
    return matched, node("segment", label or compiled.description, matched, children=children)


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """Whether a member is in a segment, and why."""

    matched: bool
    explanation: dict[str, Any]


def evaluate_segment(segment: dict[str, Any], member: dict[str, Any], *, on_list: bool = False,
                     override: str | None = None, now: datetime | None = None,
                     memberships: Collection[int] | Callable[[int], bool] | None = None,
                     tz: str | tzinfo = "UTC") -> SegmentResult:
    """Effective membership of one member in one segment (SPEC §3), with its explanation."""
    compiled = cached_definition(segment)
    env = make_env(now, tz, memberships)
    matched, tree = explain_membership(compiled, member, env, on_list=on_list, override=override)
    return SegmentResult(matched=matched, explanation=tree)


def matches(segment: dict[str, Any], member: dict[str, Any], *, on_list: bool = False,
            override: str | None = None, now: datetime | None = None,
            memberships: Collection[int] | Callable[[int], bool] | None = None,
            tz: str | tzinfo = "UTC") -> bool:
    """Effective membership only (no explanation): the fast path of evaluate_segment."""
    if override == "block":
        return False
    if override == "add":
        return True
    if override is not None:
        raise ValueError(f"override is 'add', 'block' or None, not {override!r}")
    compiled = cached_definition(segment)
    if compiled.definition.kind == "static":
        return on_list
    return compiled.match(member, make_env(now, tz, memberships))
