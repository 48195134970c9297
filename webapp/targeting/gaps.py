"""Gap texts: how far a member is from passing a numeric, date or age criterion."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from webapp.targeting import schema as s
from webapp.targeting.criteria import Criterion
from webapp.targeting.env import Env, Member, _threshold
from webapp.targeting.values import anniversary, format_number, is_number, member_date

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
