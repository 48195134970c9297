"""Value helpers shared by the evaluator, the explanations and the SQL compiler.

Case-insensitive comparison folds ASCII letters only (A-Z to a-z), because that is what SQLite's
``lower()`` does; the SQL compiler folds the same way on PostgreSQL, so Python and both databases
agree on every string. ``email`` is the exception: it is stored lower-cased (``str.lower``), so the
criterion value and the member's email are lower-cased with ``str.lower`` too.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from webapp.targeting.schema import INT64_MAX, INT64_MIN

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(text: str) -> str:
    """Fold ASCII letters to lower case (the case-insensitive comparison everywhere)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_FOLD)


def is_number(value: object) -> bool:
    """True for a JSON number (int or float, never bool)."""
    cls = value.__class__
    return cls is int or cls is float or (
        isinstance(value, int | float) and not isinstance(value, bool))


def valid_number(value: object) -> bool:
    """True for a finite number that fits the 64-bit range the database holds."""
    if not is_number(value):
        return False
    if isinstance(value, float):
        return math.isfinite(value) and INT64_MIN < value < INT64_MAX
    return INT64_MIN <= value <= INT64_MAX  # type: ignore[operator]


def format_number(value: float | int) -> str:
    """A number with thousands separators: 1000 -> '1,000', 2.5 -> '2.5'."""
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}"


# --- JSON-type-aware matching -------------------------------------------------------------


Matcher = Callable[[Any], bool]


def make_equals(expected: Any, fold_fn: Callable[[str], str] | None) -> Matcher:
    """A test `actual equals expected` by JSON type: no coercion, 12 == 12.0, lists by order."""
    if isinstance(expected, str):
        if fold_fn is None:
            return lambda a: a.__class__ is str and a == expected
        folded = fold_fn(expected)
        return lambda a: isinstance(a, str) and fold_fn(a) == folded
    if isinstance(expected, bool):
        return lambda a: a is expected
    if is_number(expected):
        return lambda a: is_number(a) and a == expected
    if isinstance(expected, list):
        items = [make_equals(x, fold_fn) for x in expected]
        n = len(items)
        return lambda a: (isinstance(a, list) and len(a) == n
                          and all(t(x) for t, x in zip(items, a, strict=True)))
    if isinstance(expected, dict):
        fields = {k: make_equals(v, fold_fn) for k, v in expected.items()}
        keys = set(fields)
        return lambda a: (isinstance(a, dict) and a.keys() == keys
                          and all(t(a[k]) for k, t in fields.items()))
    return lambda a: False


def make_in(options: list[Any], fold_fn: Callable[[str], str] | None) -> Matcher:
    """A test `actual is one of options` for one scalar, by JSON type."""
    strs = frozenset((fold_fn(x) if fold_fn else x) for x in options if isinstance(x, str))
    nums = frozenset(x for x in options if is_number(x))
    bools = frozenset(x for x in options if isinstance(x, bool))

    def test(a: Any) -> bool:
        cls = a.__class__
        if cls is str:
            return (fold_fn(a) if fold_fn else a) in strs
        if cls is bool:
            return a in bools
        if cls is int or cls is float:
            return a in nums
        if isinstance(a, str):
            return (fold_fn(a) if fold_fn else a) in strs
        return False

    return test


# --- dates ----------------------------------------------------------------------------------

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|z|[+-]\d{2}:\d{2})?$")


@lru_cache(maxsize=64)
def zone(tz: str | tzinfo | None) -> tzinfo:
    """A tzinfo for a zone name ('UTC', 'Europe/Paris') or a tzinfo; ValueError if unknown."""
    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    if tz.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(tz)
    except (ValueError, KeyError, OSError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def parse_iso(text: str) -> date | datetime:
    """Parse an ISO 8601 / RFC 3339 date or datetime strictly; raises ValueError otherwise."""
    m = _DATE_RE.match(text)
    if m:
        return date(int(m[1]), int(m[2]), int(m[3]))
    m = _DATETIME_RE.match(text)
    if not m:
        raise ValueError(text)
    micro = int((m[7] or "0").ljust(6, "0")[:6])
    offset = m[8]
    tzi: tzinfo | None = None
    if offset in ("Z", "z"):
        tzi = UTC
    elif offset:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(text)
        from datetime import timezone

        tzi = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0),
                    micro, tzinfo=tzi)


def to_utc_naive(value: datetime, tz: tzinfo) -> datetime:
    """A datetime as naive UTC; a naive input is read in `tz`."""
    if value.tzinfo is None:
        if tz is UTC:
            return value
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC).replace(tzinfo=None)


def start_of_day_utc(day: date, tz: tzinfo) -> datetime:
    """The start of `day` in `tz`, as naive UTC."""
    return to_utc_naive(datetime(day.year, day.month, day.day), tz)


def member_datetime(value: Any) -> datetime | None:
    """A member's datetime attribute as naive UTC (naive inputs are UTC), None if absent/invalid."""
    if value.__class__ is str:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif value.__class__ is date:
        value = datetime(value.year, value.month, value.day)
    elif not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def member_date(value: Any) -> date | None:
    """A member's date attribute (birthday), None if absent or invalid."""
    if value.__class__ is str:
        try:
            return date.fromisoformat(value) if len(value) == 10 else (
                datetime.fromisoformat(value).date())
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def age_on(birthday: date, today: date) -> int:
    """Whole years from birthday to today (29 Feb turns older on 1 March in common years)."""
    years = today.year - birthday.year
    if (today.month, today.day) < (birthday.month, birthday.day):
        years -= 1
    return years


def anniversary(birthday: date, years: int) -> date | None:
    """The day a member turns `years` old (29 Feb -> 1 March in common years), or None."""
    year = birthday.year + years
    if not 1 <= year <= 9999:
        return None
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


def age_cutoff(years: int, today: date) -> date | None | bool:
    """The latest birthday with age >= years today; True means every birthday, False none."""
    year = today.year - years
    if year > 9999:
        return True
    if year < 1:
        return False
    try:
        return date(year, today.month, today.day)
    except ValueError:  # today is 29 Feb and `year` is a common year
        return date(year, 2, 28)


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it (dates as ISO strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
