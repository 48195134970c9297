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

import copy
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from operator import attrgetter
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


class Env:
    """What an evaluation needs besides the member: the clock, the zone and other memberships."""

    __slots__ = ("now", "tz", "today", "in_segment", "explain_segment", "memo")

    def __init__(self, now: datetime, tz: tzinfo, today: date,
                 in_segment: Callable[[int], bool] | None = None,
                 explain_segment: Callable[[int], dict[str, Any] | None] | None = None) -> None:
        self.now = now                      # naive UTC
        self.tz = tz
        self.today = today
        self.in_segment = in_segment
        self.explain_segment = explain_segment
        self.memo: dict[Any, Any] = {}


def make_env(now: datetime | None = None, tz: str | tzinfo | None = "UTC",
             memberships: Collection[int] | Callable[[int], bool] | None = None) -> Env:
    """An evaluation environment (`now` naive = UTC; `memberships` answers `segment` criteria)."""
    zi = UTC if tz is None or tz == "UTC" or tz is UTC else zone(tz)
    if now is None:
        now = datetime.now(UTC)
    tzi = now.tzinfo
    if tzi is None:
        now_utc = now
        aware = now.replace(tzinfo=UTC)
    elif tzi is UTC:
        aware = now
        now_utc = now.replace(tzinfo=None)
    else:
        aware = now.astimezone(UTC)
        now_utc = aware.replace(tzinfo=None)
    today = aware.date() if zi is UTC else aware.astimezone(zi).date()
    in_segment: Callable[[int], bool] | None
    if memberships is None:
        in_segment = None
    elif callable(memberships):
        in_segment = memberships
    else:
        ids = frozenset(memberships)
        in_segment = ids.__contains__
    return Env(now=now_utc, tz=zi, today=today, in_segment=in_segment)


_last_env: tuple[Any, Any, Env | None] = (None, None, None)


def _shared_env(now: datetime | None, tz: str | tzinfo) -> Env:
    """An environment without memberships, reused while `now` and `tz` stay the same."""
    global _last_env
    last = _last_env  # one read: another thread may replace it meanwhile
    if now is not None and last[0] is now and last[1] == tz and last[2] is not None:
        return last[2]
    env = make_env(now, tz)
    if now is not None:
        _last_env = (now, tz, env)
    return env


# --- compiling criteria -----------------------------------------------------------------------

Test = Callable[[Member, Env], bool]


@dataclass(frozen=True, slots=True)
class CompiledCriterion:
    """A criterion with its fast test and the getter its explanation reads."""

    criterion: Criterion
    test: Test
    get: Callable[[Member, Env], Any]
    label: str
    pred: Callable[[Any, Env], bool]
    negative: bool
    exclude_label: str
    explain_include: Callable[[Member, Env], dict[str, Any]]
    explain_exclude: Callable[[Member, Env], dict[str, Any]]
    gap_include: Callable[[Any, Env, Member], str | None]
    gap_exclude: Callable[[Any, Env, Member], str | None]


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
    def resolve(env: Env) -> Any:
        got = env.memo.get(dv)
        if got is None:
            got = env.memo[dv] = dv.as_utc(env.now, env.tz)
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


# The inline form of the commonest criteria: a present member value `v` is answered by the first
# test when it has the usual type, and by the criterion's full rule `P` (from `_positive`)
# otherwise, so the rules stay those of `_positive`. `V` is the criterion's value (as prepared).
_NUMBER = "v.__class__ is int or v.__class__ is float"
_INLINE_HOLDS = {
    "str_equals": "(v == {V} if v.__class__ is str else {P}(v, env))",
    "str_in": "(v in {V} if v.__class__ is str else {P}(v, env))",
    "num_equals": f"(v == {{V}} if {_NUMBER} else {{P}}(v, env))",
    s.GTE: f"(v >= {{V}} if {_NUMBER} else {{P}}(v, env))",
    s.GT: f"(v > {{V}} if {_NUMBER} else {{P}}(v, env))",
    s.LTE: f"(v <= {{V}} if {_NUMBER} else {{P}}(v, env))",
    s.LT: f"(v < {{V}} if {_NUMBER} else {{P}}(v, env))",
}


def _inline_spec(c: Criterion) -> tuple[str, Any] | None:
    """(`_INLINE_HOLDS` key, prepared value) for a criterion matched inline, else None.

    Plain string and number attributes and one-key custom fields, without case folding; `email`
    (lower-cased) and `age` (computed) always go through their full rule.
    """
    op = c.operator
    if c.case_insensitive or c.field in ("email", "age"):
        return None
    if c.kind not in (s.STRING, s.INTEGER) and not (c.kind == s.ANY and len(c.path) == 1):
        return None
    value = c.value
    base = s.NEGATIVE.get(op, op)
    number = value.__class__ is int or value.__class__ is float
    if base == s.EQUALS and value.__class__ is str:
        return "str_equals", value
    if base == s.EQUALS and number:
        return "num_equals", value
    if base in s.ORDERING:
        return base, value
    if base == s.IN and c.kind == s.STRING:
        return "str_in", frozenset(value)
    return None


def _inline_test(i: int, cc: CompiledCriterion, consts: dict[str, Any]
                 ) -> tuple[list[str], str] | None:
    """Lines setting `v` to the member's value, and the expression of the criterion's test."""
    c = cc.criterion
    spec = _inline_spec(c)
    if spec is None:
        return None
    key, value = spec
    consts[f"v{i}"] = value
    consts[f"p{i}"] = cc.pred
    if c.kind == s.ANY:
        consts[f"k{i}"] = c.path[0]
        lines = ["cf = m.get('custom_fields')",
                 f"v = cf.get(k{i}) if cf.__class__ is dict else None"]
    else:
        consts[f"k{i}"] = c.field
        lines = [f"v = m.get(k{i})"]
    holds = _INLINE_HOLDS[key].format(V=f"v{i}", P=f"p{i}")
    return lines, (f"(v is None or not {holds})" if cc.negative
                   else f"(v is not None and {holds})")


def _generate(include: tuple[CompiledCriterion, ...], exclude: tuple[CompiledCriterion, ...]
              ) -> tuple[Test, Callable[[Env, Callable[..., bool]], Any],
                         Callable[[Member, Env], tuple[bool, list[dict[str, Any]]]]]:
    """A dynamic definition's criteria as three generated Python functions.

    `match(member, env)` tests every criterion in turn (include, then exclude), with the same
    answers, in the same order, as calling each criterion's test; `bind(env, slow)` makes a
    `compile_segment` matcher `matcher(member, memberships=None)` for a fixed `env` (`slow`
    answers with memberships); `explain(member, env)` returns whether the rules match and
    the include/exclude nodes, the same nodes as calling each criterion's explainer. The
    commonest criteria are inlined (see `_INLINE_HOLDS`), the others call their own test or
    explainer. Criterion values, labels and field names reach the code as arguments of a
    factory, never as source text, so the source depends only on the definition's shape and is
    compiled once per shape.
    """
    consts: dict[str, Any] = {"plain": _PLAIN, "jsonable": jsonable}
    match: list[str] = []
    explain: list[str] = []
    for group, excluding in ((include, False), (exclude, True)):
        ok = "xok" if excluding else "ok"
        explain.append(f"{ok} = True")
        names = []
        for cc in group:
            i = len(names) + (len(include) if excluding else 0)
            names.append(f"n{i}")
            inline = _inline_test(i, cc, consts)
            if inline is None:
                consts[f"t{i}"] = cc.test
                consts[f"e{i}"] = cc.explain_exclude if excluding else cc.explain_include
                match.append(f"if {'' if excluding else 'not '}t{i}(m, env): return False")
                explain.append(f"n{i} = e{i}(m, env)")
                explain.append(f"if not n{i}['passed']: {ok} = False")
                continue
            lines, test = inline
            match.extend(lines)
            match.append(f"if {test if excluding else 'not ' + test}: return False")
            consts[f"l{i}"] = cc.exclude_label if excluding else cc.label
            consts[f"x{i}"] = cc.criterion.value
            consts[f"g{i}"] = cc.gap_exclude if excluding else cc.gap_include
            explain.extend(lines)
            explain.append(f"h = {'not ' if excluding else ''}{test}")
            explain.append(
                f"n{i} = {{'kind': 'criterion', 'label': l{i}, 'passed': h, "
                "'actual': v if v.__class__ in plain else jsonable(v), "
                f"'expected': x{i}, 'gap': None if h else g{i}(v, env, m), 'children': []}}")
            explain.append(f"if not h: {ok} = False")
        kind, label = ("exclude", "matches no exclude criterion") if excluding else (
            "include", "matches every include criterion" if include
            else "no include criteria: everyone matches")
        consts[f"{kind}_label"] = label
        group_node = (f"{{'kind': '{kind}', 'label': {kind}_label, 'passed': {ok}, "
                      "'actual': None, 'expected': None, 'gap': None, "
                      f"'children': [{', '.join(names)}]}}")
        if not excluding:
            explain.append(f"nodes = [{group_node}]")
        elif exclude:
            explain.append(f"nodes.append({group_node})")
            explain.append("return ok and xok, nodes")
        else:
            explain.pop()  # no exclude criteria, no exclude node
            explain.append("return ok, nodes")
    match.append("return True")

    def indent(lines: list[str], depth: int) -> str:
        return "\n".join(" " * depth + line for line in lines)

    source = (
        f"def factory({', '.join(consts)}):\n"
        f"    def match(m, env):\n{indent(match, 8)}\n"
        "    def bind(env, slow):\n"
        "        def matcher(m, memberships=None):\n"
        "            if memberships is not None:\n"
        "                return slow(m, memberships)\n"
        f"{indent(match, 12)}\n"
        "        return matcher\n"
        f"    def explain(m, env):\n{indent(explain, 8)}\n"
        "    return match, bind, explain\n")
    factory = _FACTORIES.get(source)
    if factory is None:
        namespace: dict[str, Any] = {}
        exec(compile(source, "<segment rules>", "exec"), namespace)
        factory = namespace["factory"]
        if len(_FACTORIES) >= _CACHE_LIMIT:
            _FACTORIES.clear()
        _FACTORIES[source] = factory
    return factory(**consts)


_FACTORIES: dict[str, Callable[..., Any]] = {}


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
        # A segment criterion has no missing value: not_in is simply "not in any of them".
        if negative:
            def test(m: Member, env: Env) -> bool:
                return not pred(None, env)
        else:
            def test(m: Member, env: Env) -> bool:
                return pred(None, env)
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
    label = criterion_label(c, segment_names)
    exclude_label = f"excluded when {label}"
    gap_include = make_gap(c, c.operator)
    gap_exclude = make_gap(c, _FLIP.get(c.operator, ""))
    return CompiledCriterion(
        criterion=c, test=test, get=get, label=label, pred=pred, negative=negative,
        exclude_label=exclude_label,
        explain_include=_make_explainer(c, get, test, pred, negative, label, gap_include, False),
        explain_exclude=_make_explainer(c, get, test, pred, negative, exclude_label,
                                        gap_exclude, True),
        gap_include=gap_include, gap_exclude=gap_exclude)


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
        low, high = _int_bounds(op, value)
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


def make_gap(c: Criterion, op: str) -> Callable[[Any, Env, Member], str | None]:
    """The gap text function of a criterion failing `op` (the flipped op for an exclude)."""
    missing = None
    if op not in (s.NOT_EXISTS, "") and c.kind != s.SEGMENT:
        missing = f"has no {c.field if c.kind != s.ANY else 'value for ' + c.field}"
    if c.kind == s.SEGMENT:
        return lambda actual, env, m: None
    if c.kind == s.INTEGER and c.field != "age" and is_number(c.value):
        low, high = _int_bounds(op, c.value)
        unit = _UNITS.get(c.field, c.field)

        def int_gap(actual: Any, env: Env, m: Member) -> str | None:
            if actual is None:
                return missing
            if not is_number(actual):
                return None
            if low is not None and actual < low:
                return f"needs {format_number(low - actual)} more {unit}"
            if high is not None and actual > high:
                return f"has {format_number(actual - high)} {unit} too many"
            return None
        return int_gap
    if c.kind == s.STRING or (c.kind in (s.LIST, s.ANY) and op not in s.ORDERING):
        return lambda actual, env, m: missing if actual is None else None

    def generic_gap(actual: Any, env: Env, m: Member) -> str | None:
        if actual is None:
            return missing
        birthday = member_date(m.get("birthday")) if c.field == "age" else None
        return gap_for(c, op, actual, env, birthday)
    return generic_gap


@lru_cache(maxsize=4096)
def _int_bounds(op: str, value: float) -> tuple[float | None, float | None]:
    """The lowest and highest whole number passing `op value` (None: unbounded)."""
    if op == s.GTE:
        return math.ceil(value), None
    if op == s.GT:
        return math.floor(value) + 1, None
    if op == s.LTE:
        return None, math.floor(value)
    if op == s.LT:
        return None, math.ceil(value) - 1
    if op == s.EQUALS:
        return value, value
    return None, None


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
    bind: Callable[[Env, Callable[..., bool]], Callable[..., bool]]
    explain: Callable[[Member, Env], tuple[bool, list[dict[str, Any]]]]
    include_explainers: tuple[Callable[[Member, Env], dict[str, Any]], ...] = ()
    exclude_explainers: tuple[Callable[[Member, Env], dict[str, Any]], ...] = ()
    static: bool = False                 # its members are its list: the rules never match
    segment_criteria: bool = False       # it has `segment` criteria (they need memberships)
    rules: Test | None = None            # `match` when membership is the rules alone, else None


def compile_definition(segment: Any, segment_names: dict[Any, str] | None = None
                       ) -> CompiledDefinition:
    """Validate and compile a definition (the rule part) once, for many evaluations."""
    d = segment if isinstance(segment, Definition) else parse_definition(segment)
    inc = tuple(compile_criterion(c, segment_names) for c in d.include)
    exc = tuple(compile_criterion(c, segment_names) for c in d.exclude)
    description = describe_definition(d, segment_names)
    segment_criteria = any(c.kind == s.SEGMENT for c in d.include + d.exclude)
    if d.kind == "static":
        def match(m: Member, env: Env) -> bool:
            return False

        def bind(env: Env, slow: Callable[..., bool]) -> Callable[..., bool]:
            return lambda m, memberships=None: False

        def explain(m: Member, env: Env) -> tuple[bool, list[dict[str, Any]]]:
            return _explain_each(inc, exc, m, env)
    else:
        match, bind, explain = _generate(inc, exc)
    return CompiledDefinition(definition=d, include=inc, exclude=exc,
                              description=description, match=match, bind=bind,
                              explain=explain,
                              include_explainers=tuple(c.explain_include for c in inc),
                              exclude_explainers=tuple(c.explain_exclude for c in exc),
                              static=d.kind == "static",
                              segment_criteria=segment_criteria,
                              rules=None if d.kind == "static" or segment_criteria else match)


_BY_TEXT: dict[str, CompiledDefinition] = {}
_BY_ID: dict[int, tuple[Any, Any, CompiledDefinition]] = {}
_CACHE_LIMIT = 4096


class _Strict:
    """A snapshot leaf equal only to a value of the same type: `==` alone has True == 1 == 1.0."""

    __slots__ = ("value", "cls")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, value: Any) -> None:
        self.value = value
        self.cls = value.__class__

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.cls and other == self.value


def _snapshot(value: Any) -> Any:
    """A deep copy to compare a definition against with one `==` (other leaves strict)."""
    cls = value.__class__
    if cls is str or value is None:
        return value
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    if cls in (bool, int, float):
        return _Strict(value)
    return _Strict(copy.deepcopy(value))


def cached_definition(segment: dict[str, Any]) -> CompiledDefinition:
    """The compiled form of a definition dict, cached (changed contents are recompiled).

    The fast path keeps a reference to the dict (so its id cannot be reused) and a strict
    snapshot to notice in-place edits; otherwise the definition's repr (which tells True, 1
    and 1.0 apart, unlike ==) is the key.
    """
    hit = _BY_ID.get(id(segment))
    if hit is not None and hit[0] is segment and hit[1] == segment:
        return hit[2]
    key = repr(segment)
    compiled = _BY_TEXT.get(key)
    if compiled is None:
        compiled = compile_definition(segment)
        if len(_BY_TEXT) >= _CACHE_LIMIT:
            _BY_TEXT.clear()
        _BY_TEXT[key] = compiled
    if len(_BY_ID) >= _CACHE_LIMIT:
        _BY_ID.clear()
    try:
        _BY_ID[id(segment)] = (segment, _snapshot(segment), compiled)
    except (TypeError, copy.Error):
        pass
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

    def with_memberships(member: Member, memberships: Collection[int]) -> bool:
        return match(member, Env(now=env.now, tz=env.tz, today=env.today,
                                 in_segment=frozenset(memberships).__contains__))
    return compiled.bind(env, with_memberships)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _make_explainer(c: Criterion, get: Callable[[Member, Env], Any], test: Test,
                    pred: Callable[[Any, Env], bool], negative: bool, label: str,
                    gap_fn: Callable[[Any, Env, Member], str | None], excluding: bool
                    ) -> Callable[[Member, Env], dict[str, Any]]:
    """A closure building one criterion's explanation node (kept lean: it runs per member)."""
    expected = c.value
    plain = _PLAIN
    if c.kind == s.SEGMENT:
        ids = tuple(c.value)

        def explain_segment(m: Member, env: Env) -> dict[str, Any]:
            actual = get(m, env)
            holds = test(m, env)
            children = []
            if env.explain_segment is not None:
                for sid in ids:
                    child = env.explain_segment(sid)
                    if child is not None:
                        children.append(child)
            return {"kind": "criterion", "label": label, "passed": holds is not excluding,
                    "actual": actual, "expected": expected, "gap": None, "children": children}
        return explain_segment

    def explain(m: Member, env: Env) -> dict[str, Any]:
        actual = get(m, env)
        holds = negative if actual is None else (pred(actual, env) is not negative)
        passed = holds is not excluding
        return {"kind": "criterion", "label": label, "passed": passed,
                "actual": actual if actual.__class__ in plain else jsonable(actual),
                "expected": expected, "gap": None if passed else gap_fn(actual, env, m),
                "children": []}
    return explain


def _explain_each(include: tuple[CompiledCriterion, ...], exclude: tuple[CompiledCriterion, ...],
                  m: Member, env: Env) -> tuple[bool, list[dict]]:
    """`explain_rules` by calling each criterion's explainer (what the generated code does)."""
    inc_nodes = [c.explain_include(m, env) for c in include]
    inc_ok = all(n["passed"] for n in inc_nodes)
    nodes = [{"kind": "include", "label": "matches every include criterion" if inc_nodes
              else "no include criteria: everyone matches", "passed": inc_ok, "actual": None,
              "expected": None, "gap": None, "children": inc_nodes}]
    if not exclude:
        return inc_ok, nodes
    exc_nodes = [c.explain_exclude(m, env) for c in exclude]
    exc_ok = all(n["passed"] for n in exc_nodes)
    nodes.append({"kind": "exclude", "label": "matches no exclude criterion", "passed": exc_ok,
                  "actual": None, "expected": None, "gap": None, "children": exc_nodes})
    return inc_ok and exc_ok, nodes


def _override_verdict(override: str) -> bool:
    """Membership under an override: "block" is out and "add" is in, whatever the rules say."""
    if override == "block":
        return False
    if override == "add":
        return True
    raise ValueError(f"override is 'add', 'block' or None, not {override!r}")


def explain_membership(compiled: CompiledDefinition, m: Member, env: Env, *, on_list: bool,
                       override: str | None, label: str | None = None,
                       override_node: dict[str, Any] | None = None) -> tuple[bool, dict]:
    """Effective membership (SPEC §3 precedence) and its explanation node."""
    children: list[dict[str, Any]]
    if compiled.definition.kind == "static":
        matched = on_list
        children = [node("list", "on the segment's list" if on_list
                         else "not on the segment's list", on_list, on_list, True)]
    else:
        matched, children = compiled.explain(m, env)
    if override is not None:
        matched = _override_verdict(override)
        children.insert(0, override_node or node(
            "override", "blocked by override" if override == "block" else "added by override",
            override == "add", actual=override))
    return matched, {"kind": "segment", "label": label or compiled.description,
                     "passed": matched, "actual": None, "expected": None, "gap": None,
                     "children": children}


class SegmentResult:
    """Whether a member is in a segment (`matched`), and why (`explanation`, a node tree).

    Read-only. From :func:`evaluate_segment` the tree is built on first read of `explanation`
    (deciding `matched` does not need it), for the clock, zone, memberships, list and override
    given at the call; the member is read as it is then, so do not change it in between.
    Equality, repr and pickling see the full tree, as for an eagerly built result.
    """

    __slots__ = ("_matched", "_tree", "_later")
    __match_args__ = ("matched", "explanation")
    __hash__ = None  # type: ignore[assignment]  # the tree is a dict

    def __init__(self, matched: bool, explanation: dict[str, Any]) -> None:
        self._matched = matched
        self._tree = explanation
        self._later: tuple[Any, ...] | None = None

    matched = property(attrgetter("_matched"), doc="Effective membership (SPEC §3).")

    @property
    def explanation(self) -> dict[str, Any]:
        """The explanation tree (see the module docstring), built once on first read."""
        tree = self._tree
        if tree is None:
            later = self._later
            if later is None:  # built meanwhile by another thread
                return self._tree  # type: ignore[return-value]
            compiled, member, env, on_list, override = later
            matched, tree = explain_membership(compiled, member, env, on_list=on_list,
                                               override=override)
            if bool(matched) is not bool(self._matched):
                raise RuntimeError(
                    "the member was changed between evaluate_segment and reading the "
                    "explanation, which now disagrees with `matched`")
            self._tree = tree
            self._later = None  # the member and environment are no longer needed
        return tree

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, SegmentResult)
        return (self._matched, self.explanation) == (other._matched, other.explanation)

    def __repr__(self) -> str:
        return f"SegmentResult(matched={self._matched!r}, explanation={self.explanation!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return SegmentResult, (self._matched, self.explanation)


_new_result = object.__new__


def evaluate_segment(segment: dict[str, Any], member: dict[str, Any], *, on_list: bool = False,
                     override: str | None = None, now: datetime | None = None,
                     memberships: Collection[int] | Callable[[int], bool] | None = None,
                     tz: str | tzinfo = "UTC") -> SegmentResult:
    """Effective membership of one member in one segment (SPEC §3), with its explanation.

    `matched` is decided by the compiled definition; the explanation tree is built when first
    read (see :class:`SegmentResult`). Invalid definitions, overrides and zones raise here.
    """
    compiled = cached_definition(segment)
    if memberships is None:
        env = _shared_env(now, tz)
        rules = compiled.rules
        if rules is not None and override is None:  # the common case, in short
            result = _new_result(SegmentResult)
            result._matched = rules(member, env)
            result._tree = None
            result._later = (compiled, member, env, on_list, None)
            return result
        if compiled.segment_criteria:
            # Explaining reads the memberships, so this raises the missing-memberships error
            # exactly as before, at the call.
            matched, tree = explain_membership(compiled, member, env, on_list=on_list,
                                               override=override)
            return SegmentResult(matched, tree)
    elif callable(memberships):
        # The caller's function may have effects or fail: ask it exactly as before, now.
        env = make_env(now, tz, memberships)
        matched, tree = explain_membership(compiled, member, env, on_list=on_list,
                                           override=override)
        return SegmentResult(matched, tree)
    else:
        env = make_env(now, tz, memberships)
    if override is None:
        matched = on_list if compiled.static else compiled.match(member, env)
    else:
        matched = _override_verdict(override)
    result = _new_result(SegmentResult)
    result._matched = matched
    result._tree = None
    result._later = (compiled, member, env, on_list, override)
    return result


def matches(segment: dict[str, Any], member: dict[str, Any], *, on_list: bool = False,
            override: str | None = None, now: datetime | None = None,
            memberships: Collection[int] | Callable[[int], bool] | None = None,
            tz: str | tzinfo = "UTC") -> bool:
    """Effective membership only (no explanation): `evaluate_segment(...).matched`, as a bool."""
    if override is not None:
        return _override_verdict(override)
    compiled = cached_definition(segment)
    if compiled.static:
        return on_list
    if memberships is None:
        env = _shared_env(now, tz)
    else:
        env = make_env(now, tz, memberships)
    return compiled.match(member, env)
