"""Criteria on what members did: counts, sums and moments of their activities over a window.

An *activity* is something a member did, recorded by the client: a ``type`` (``purchase``,
``visit``, any name the client uses), the moment it ``occurred_at``, an optional ``amount`` and
optional ``properties`` (a JSON object). An *activity criterion* measures the member's
activities of one type, optionally filtered by their properties, over a window, and compares
the measure with a value::

    {"field": "activity.count", "operator": ">=", "value": 3,
     "activity": {"type": "purchase", "window": {"days": 30},
                  "where": [{"field": "properties.item", "operator": "equals",
                             "value": "coffee"}]}}

Semantics (they hold alike in Python for one member and in SQL for all members):

* **Measures** (the field): ``activity.count`` (how many), ``activity.sum`` (the sum of their
  amounts), ``activity.min`` and ``activity.max`` (the smallest and largest amount),
  ``activity.first`` and ``activity.last`` (the earliest and latest ``occurred_at``).
* **Operators**: ``>=``, ``>``, ``<=``, ``<``, ``equals`` and ``not_equals``. "Did not" is
  ``activity.count equals 0``. A count takes a whole number from 0; a sum, min or max a
  number with at most four decimal places; first and last a date, a datetime or
  ``{"days_ago": N}`` (as for ``created_at``).
* **No activities**: the count is 0 and the sum is 0 (so ``count < 3`` and ``sum <= 10`` hold
  for a member who did nothing); min, max, first and last have no value, and a criterion on a
  missing value does not hold, except ``not_equals``, which does (as for a missing
  attribute). Activities without an amount count and are ignored by sum, min and max.
* **Amounts** are exact to four decimal places: they are stored as whole ten-thousandths
  (``amount_e4``), so sums are exact in Python and in both databases. An amount that is not a
  number (a string, a boolean, an object) or has more decimals is refused when the activity is
  recorded, never read as zero.
* **Windows**: ``{"days": N}`` (1 to 3,660) is today and the N-1 days before it, as calendar
  days in the program's time zone: it starts at the start of that first day, *inclusive*, and
  so an activity leaves it at the start of the day N days after the day it happened.
  ``{"from": "2026-11-01", "to": "2026-11-30"}`` is those whole days, both included, in the
  program's time zone (``from`` alone or ``to`` alone leaves that side open). No window means
  all time.
* **The future**: an activity whose ``occurred_at`` is after the evaluation moment is not
  counted until that moment comes, in any window.
* **Deleted members** have no activities (they are deleted with the member); recording an
  activity for a member that does not exist is refused.
* **Property filters** (``where``) are criteria on ``properties.<path>`` with the operators and
  JSON-type rules of custom fields (a string never equals a number, a missing property makes
  the negative operators true). Every filter must hold for the activity to be measured.

The member's activities reach the core as ``member["activities"]``: a sequence of
``(type, occurred_at, amount_e4, properties)`` tuples, `occurred_at` naive UTC. The service layer
loads them (only the types and the time span the definitions need); evaluating an activity
criterion without them is an error, never a silent "did nothing".

Explanations: an activity criterion's node is a ``criterion`` node whose ``actual`` is an
object: ``value`` (the measure, compared with ``expected``), ``count`` (the activities measured),
``summary`` ("2 purchases in the last 30 days"), ``window`` (``from`` and ``to`` as ISO
datetimes) and ``leaves_window_at`` (when the oldest measured activity leaves a ``days``
window, else null). A failed node's ``gap`` says how far the member is ("2 purchases in the
last 30 days; needs 1 more", "the last visit was 74 days ago").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from webapp.targeting import schema as s
from webapp.targeting.errors import SegmentDefinitionError
from webapp.targeting.values import format_number, is_number, parse_iso, start_of_day_utc

FIELD_PREFIX = "activity."
MEASURES = ("count", "sum", "min", "max", "first", "last")
OPERATORS = s.OPERATORS_BY_TYPE[s.ACTIVITY]  # equals, not_equals, >=, >, <=, <
MAX_WINDOW_DAYS = 3660
MAX_FILTERS = 10
MAX_TYPE_LENGTH = 100
AMOUNT_SCALE = 10_000           # amounts are whole ten-thousandths
MAX_AMOUNT = 10**14             # |amount| below this, so sums of many fit 64 bits
PROPERTY_PREFIX = "properties."

#: One activity as the core sees it: (type, occurred_at naive UTC, amount_e4 or None, properties).
Activity = tuple[str, datetime, int | None, dict | None]

_OP_WORDS = {s.GTE: "at least", s.GT: "more than", s.LTE: "at most", s.LT: "less than",
             s.EQUALS: "exactly", s.NOT_EQUALS: "other than"}
_DATE_WORDS = {s.GTE: "on or after", s.GT: "after", s.LTE: "on or before", s.LT: "before",
               s.EQUALS: "at", s.NOT_EQUALS: "not at"}
_MEASURE_WORDS = {"sum": "total amount", "min": "smallest amount", "max": "largest amount",
                  "first": "first", "last": "last"}


# --- amounts ---------------------------------------------------------------------------------


_E4 = Decimal("0.0001")


def amount_e4(value: Any) -> tuple[int | None, str | None]:
    """An amount as whole ten-thousandths (exact), or None and why `value` is not a usable
    amount (a number, at most 4 decimals, |v| < 10^14)."""
    if value.__class__ is int:
        if -MAX_AMOUNT < value < MAX_AMOUNT:
            return value * AMOUNT_SCALE, None
        return None, "amount is below 100,000,000,000,000 in size"
    if not is_number(value):
        return None, "amount is a number"
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None, "amount is a number"
    if not d.is_finite():
        return None, "amount is a finite number"
    if abs(d) >= MAX_AMOUNT:
        return None, "amount is below 100,000,000,000,000 in size"
    if d != d.quantize(_E4):
        return None, "amount has at most 4 decimal places"
    return int(d * AMOUNT_SCALE), None


def amount_problem(value: Any) -> str | None:
    """Why `value` is not a usable amount (a number, at most 4 decimals, |v| < 10^14), or None."""
    return amount_e4(value)[1]


def to_e4(value: Any) -> int:
    """A valid amount as whole ten-thousandths (exact)."""
    e4, problem = amount_e4(value)
    if problem:
        raise ValueError(problem)
    return e4


def from_e4(value: int | None) -> int | float | None:
    """Whole ten-thousandths back to the number the client sent (an int when whole)."""
    if value is None:
        return None
    if value % AMOUNT_SCALE == 0:
        return value // AMOUNT_SCALE
    return float(Decimal(value) / AMOUNT_SCALE)


# --- the criterion ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A validated window: `days` back from today, or whole days `start`..`end` (or neither)."""

    days: int | None = None
    start: date | None = None
    end: date | None = None

    def to_dict(self) -> dict[str, Any] | None:
        if self.days is not None:
            return {"days": self.days}
        if self.start is None and self.end is None:
            return None
        out: dict[str, Any] = {}
        if self.start is not None:
            out["from"] = self.start.isoformat()
        if self.end is not None:
            out["to"] = self.end.isoformat()
        return out

    def bounds(self, now: datetime, today: date, tz: tzinfo
               ) -> tuple[datetime | None, datetime | None]:
        """(first counted instant, first instant past the window) as naive UTC; None: open.

        The evaluation moment bounds every window too (the future is not counted): callers
        also require ``occurred_at <= now``."""
        if self.days is not None:
            return start_of_day_utc(today - timedelta(days=self.days - 1), tz), None
        lo = start_of_day_utc(self.start, tz) if self.start is not None else None
        hi = (start_of_day_utc(self.end + timedelta(days=1), tz) if self.end is not None
              else None)
        return lo, hi

    def words(self) -> str:
        if self.days is not None:
            return "today" if self.days == 1 else f"in the last {self.days:,} days"
        if self.start is not None and self.end is not None:
            if self.start == self.end:
                return f"on {self.start.isoformat()}"
            return f"from {self.start.isoformat()} to {self.end.isoformat()}"
        if self.start is not None:
            return f"since {self.start.isoformat()}"
        if self.end is not None:
            return f"until {self.end.isoformat()}"
        return "ever"


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    """What an activity criterion measures: one type, its property filters, a window."""

    type: str
    measure: str
    window: Window
    filters: tuple[Any, ...] = ()   # Criterion objects on `custom_fields.<path>` (= properties)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        window = self.window.to_dict()
        if window is not None:
            out["window"] = window
        if self.filters:
            out["where"] = [_filter_dict(f) for f in self.filters]
        return out


def _filter_dict(c: Any) -> dict[str, Any]:
    out = c.to_dict()
    out["field"] = PROPERTY_PREFIX + out["field"][len(s.CUSTOM_PREFIX):]
    return out


def is_activity_field(name: Any) -> bool:
    """Whether a criterion's field names an activity measure (``activity.count`` …)."""
    return isinstance(name, str) and name.startswith(FIELD_PREFIX)


def _parse_window(raw: Any, fail: Callable[[str], Exception]) -> Window:
    if raw is None:
        return Window()
    if not isinstance(raw, dict):
        raise fail('window is {"days": N} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}')
    if "days" in raw:
        if set(raw) != {"days"}:
            raise fail('window is either {"days": N} or from/to dates, not both')
        n = raw["days"]
        if not (isinstance(n, int) and not isinstance(n, bool)) or not 1 <= n <= MAX_WINDOW_DAYS:
            raise fail(f"window days is a whole number from 1 to {MAX_WINDOW_DAYS:,}")
        return Window(days=n)
    unknown = sorted(str(k) for k in raw if k not in ("from", "to"))
    if unknown or not raw:
        raise fail('window is {"days": N} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}')
    got: dict[str, date] = {}
    for key in ("from", "to"):
        if key not in raw or raw[key] is None:
            continue
        text = raw[key]
        try:
            parsed = parse_iso(text) if isinstance(text, str) else None
        except ValueError:
            parsed = None
        if parsed is None or isinstance(parsed, datetime):
            raise fail(f"window {key} is a date, YYYY-MM-DD (whole days in the program's "
                       f"time zone), not {text!r}")
        got[key] = parsed
    if not got:
        raise fail("window from or to is needed")
    if "from" in got and "to" in got and got["from"] > got["to"]:
        raise fail("window from is after to")
    return Window(start=got.get("from"), end=got.get("to"))


def parse_activity_criterion(raw: dict[str, Any], where: str, label: str) -> Any:
    """Validate an activity criterion (see the module docstring) into a Criterion."""
    from webapp.targeting.criteria import Criterion, _parse_date_value, parse_criterion

    def fail(message: str) -> SegmentDefinitionError:
        return SegmentDefinitionError(f"{label}: {message}", where)

    unknown = sorted(str(k) for k in raw if k not in ("field", "operator", "value", "activity"))
    if unknown:
        raise fail(f"unknown key {', '.join(unknown)} (an activity criterion has field, "
                   "operator, value and activity)")
    measure = raw["field"][len(FIELD_PREFIX):]
    if measure not in MEASURES:
        raise fail(f"unknown measure {raw['field']!r}; measures are "
                   + ", ".join(FIELD_PREFIX + m for m in MEASURES))
    op = raw.get("operator")
    if op not in OPERATORS:
        raise fail(f"{raw['field']} compares with {', '.join(OPERATORS)}, not {op!r}")
    spec_raw = raw.get("activity")
    if not isinstance(spec_raw, dict):
        raise fail('name the activity: "activity": {"type": "purchase", "window": {"days": 30}}')
    bad = sorted(str(k) for k in spec_raw if k not in ("type", "window", "where"))
    if bad:
        raise fail(f"unknown key {', '.join(bad)} in activity (it has type, window and where)")
    kind = spec_raw.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise fail("activity type is missing (e.g. purchase)")
    if len(kind) > MAX_TYPE_LENGTH or kind != kind.strip():
        raise fail(f"activity type is a name of at most {MAX_TYPE_LENGTH} characters without "
                   "surrounding spaces")
    window = _parse_window(spec_raw.get("window"), fail)
    filters_raw = spec_raw.get("where") or []
    if not isinstance(filters_raw, list):
        raise fail("activity where is a list of criteria on properties.<name>")
    if len(filters_raw) > MAX_FILTERS:
        raise fail(f"at most {MAX_FILTERS} property filters ({len(filters_raw)} given)")
    filters = []
    for i, f in enumerate(filters_raw):
        f_where = f"{where}.activity.where[{i}]"
        name = f.get("field") if isinstance(f, dict) else None
        if not isinstance(name, str) or not name.startswith(PROPERTY_PREFIX):
            raise SegmentDefinitionError(
                f"{f_where}: a property filter's field is properties.<name>, e.g. "
                "properties.item", f_where)
        try:
            parsed = parse_criterion({**f, "field": s.CUSTOM_PREFIX + name[len(PROPERTY_PREFIX):]},
                                     f_where)
        except SegmentDefinitionError as exc:
            raise SegmentDefinitionError(
                str(exc).replace("custom_fields.", PROPERTY_PREFIX)
                .replace("custom field ", "property "), f_where) from None
        filters.append(parsed)
    value = raw.get("value")
    date_value = None
    if measure == "count":
        if not (isinstance(value, int) and not isinstance(value, bool)) or not (
                0 <= value <= s.INT64_MAX):
            raise fail("a count takes a whole number from 0")
    elif measure in ("sum", "min", "max"):
        problem = amount_problem(value)
        if problem:
            raise fail(f"{raw['field']} takes a number with at most 4 decimal places"
                       if problem.startswith("amount is a number") else problem)
    else:
        if value is None:
            raise fail(f"{raw['field']} needs a value")
        date_value = _parse_date_value(value, raw["field"], s.DATETIME, fail)
    spec = ActivitySpec(type=kind, measure=measure, window=window, filters=tuple(filters))
    return Criterion(field=raw["field"], operator=op, value=value, kind=s.ACTIVITY,
                     where=where, date_value=date_value, activity=spec)


# --- measuring one member ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """A member's activities of a spec in its window, measured."""

    count: int
    sum_e4: int
    min_e4: int | None
    max_e4: int | None
    first: datetime | None
    last: datetime | None
    start: datetime | None
    end: datetime | None   # exclusive, or None: up to now inclusive

    def value(self, measure: str) -> Any:
        """The measure's value as compared (amounts in ten-thousandths; None when none)."""
        return {"count": self.count, "sum": self.sum_e4, "min": self.min_e4,
                "max": self.max_e4, "first": self.first, "last": self.last}[measure]


def _filter_tests(spec: ActivitySpec) -> tuple[Callable[[Any, Any], bool], ...]:
    from webapp.targeting.compiler import compile_criterion
    return tuple(compile_criterion(f).test for f in spec.filters)


def activities_of(member: Any, c: Any) -> Sequence[Activity]:
    """The member's loaded activities; refuses a member whose activities were not loaded."""
    acts = member.get("activities")
    if acts is None:
        raise SegmentDefinitionError(
            f"{c.where or 'criterion'} ({c.field}): activity criteria need the member's "
            "activities", c.where)
    return acts


def _measured_by(spec: ActivitySpec, tests: Sequence[Callable], env: Any
                 ) -> tuple[Callable[[Activity], bool], datetime | None, datetime | None]:
    """Whether `spec` measures an activity at `env` (its type, inside the window, not in the
    future, every filter holding), with the window's bounds."""
    start, end = spec.window.bounds(env.now, env.today, env.tz)
    now = env.now
    kind = spec.type

    def measured(activity: Activity) -> bool:
        a_type, at, _amount, props = activity
        if a_type != kind or at > now or (start is not None and at < start) or (
                end is not None and at >= end):
            return False
        if tests:
            holder = {"custom_fields": props if props.__class__ is dict else {}}
            return all(t(holder, env) for t in tests)
        return True

    return measured, start, end


def measure(acts: Sequence[Activity], spec: ActivitySpec, tests: Sequence[Callable],
            env: Any) -> Measured:
    """Measure the activities of `spec.type` passing the filters, inside the window at `env`."""
    measured, start, end = _measured_by(spec, tests, env)
    count = 0
    total = 0
    lo = hi = None
    first = last = None
    for activity in acts:
        if not measured(activity):
            continue
        _, at, amount, _ = activity
        count += 1
        if amount is not None:
            total += amount
            lo = amount if lo is None or amount < lo else lo
            hi = amount if hi is None or amount > hi else hi
        first = at if first is None or at < first else first
        last = at if last is None or at > last else last
    return Measured(count, total, lo, hi, first, last, start, end)


def measuring_any(criteria: Sequence[Any], new: Mapping[str, Sequence[Activity]],
                  env: Any) -> set[str]:
    """The members (keys of `new`) of whose new activities at least one is measured by one
    of these activity criteria at `env`. Only their answers can change by recording them: an
    activity no criterion measures (another type, outside every window, in the future,
    filtered out) leaves every measure, and so every answer, as it was."""
    tests = [_measured_by(c.activity, _filter_tests(c.activity), env)[0]
             for c in criteria if c.kind == s.ACTIVITY]
    return {member for member, acts in new.items()
            if any(t(a) for a in acts for t in tests)}


def _compare(op: str, got: Any, want: Any) -> bool:
    if op == s.GTE:
        return got >= want
    if op == s.GT:
        return got > want
    if op == s.LTE:
        return got <= want
    if op == s.LT:
        return got < want
    if op == s.NOT_EQUALS:
        return got != want
    return got == want


def threshold(c: Any, env: Any) -> Any:
    """The criterion's value as compared: a count, ten-thousandths, or a naive UTC instant."""
    spec: ActivitySpec = c.activity
    if spec.measure == "count":
        return c.value
    if spec.measure in ("sum", "min", "max"):
        return to_e4(c.value)
    return c.date_value.as_utc(env.now, env.tz)


def holds(c: Any, m: Measured, env: Any) -> bool:
    """Whether the measured activities pass the criterion (a missing value passes only
    not_equals)."""
    got = m.value(c.activity.measure)
    if got is None:
        return c.operator == s.NOT_EQUALS
    return _compare(c.operator, got, threshold(c, env))


# --- words --------------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _what(spec: ActivitySpec, filter_label: Callable[[Any], str]) -> str:
    text = spec.type
    if spec.filters:
        text += " (" + ", ".join(filter_label(f) for f in spec.filters) + ")"
    return text


def _filter_words(f: Any) -> str:
    from webapp.targeting.criteria import criterion_label
    return criterion_label(f).replace("custom field ", "")


def activity_label(c: Any) -> str:
    """Readable words: 'purchase (item is "coffee") at least 3 times in the last 30 days'."""
    spec: ActivitySpec = c.activity
    what = _what(spec, _filter_words)
    window = spec.window.words()
    op, v = c.operator, c.value
    if spec.measure == "count":
        if (v == 0 and op in (s.EQUALS, s.LTE)) or (v == 1 and op == s.LT):
            return f"no {what} {window}"
        times = "time" if v == 1 else "times"
        return f"{what} {_OP_WORDS[op]} {v:,} {times} {window}"
    if spec.measure in ("sum", "min", "max"):
        return f"{_MEASURE_WORDS[spec.measure]} of {what} {window} {_OP_WORDS[op]} " \
               f"{format_number(v)}"
    dv = c.date_value
    when = (("today" if dv.days_ago == 0 else "1 day ago" if dv.days_ago == 1
             else f"{dv.days_ago:,} days ago") if dv.days_ago is not None else str(v))
    return f"{_MEASURE_WORDS[spec.measure]} {what} {window} {_DATE_WORDS[op]} {when}"


def _ago(then: datetime, env: Any) -> str:
    days = (env.now - then) // timedelta(days=1)
    if days <= 0:
        return "today"
    return "yesterday" if days == 1 else f"{days:,} days ago"


def summary(c: Any, m: Measured, env: Any) -> str:
    """The member's measure in words: '2 purchases in the last 30 days'."""
    spec: ActivitySpec = c.activity
    what = _what(spec, _filter_words)
    window = spec.window.words()
    if spec.measure == "count":
        return f"{_plural(m.count, spec.type)}{what[len(spec.type):]} {window}"
    if spec.measure in ("sum", "min", "max"):
        got = m.value(spec.measure)
        if got is None:
            return f"no {what} with an amount {window}"
        return f"{_MEASURE_WORDS[spec.measure]} of {what} {window}: " \
               f"{format_number(from_e4(got))} (over {_plural(m.count, 'activity')})" \
               .replace("activitys", "activities")
    got = m.value(spec.measure)
    if got is None:
        return f"no {what} {window}"
    return f"the {spec.measure} {what} was {_ago(got, env)} ({got.isoformat()}Z)"


def gap(c: Any, m: Measured, env: Any, op: str) -> str | None:
    """How far the member is from passing `op` (the flipped operator in an exclude)."""
    spec: ActivitySpec = c.activity
    text = summary(c, m, env)
    got = m.value(spec.measure)
    if got is None:
        return text
    want = threshold(c, env)
    if spec.measure in ("first", "last"):
        return text
    low = high = None
    if op == s.GTE:
        low = want
    elif op == s.GT:
        low = want + 1
    elif op == s.LTE:
        high = want
    elif op == s.LT:
        high = want - 1
    elif op == s.EQUALS:
        low = high = want
    else:  # not_equals: one step either way passes
        return text
    unit = (lambda n: f"{n:,}") if spec.measure == "count" else (
        lambda n: format_number(from_e4(n)))
    if low is not None and got < low:
        return f"{text}; needs {unit(low - got)} more"
    if high is not None and got > high:
        return f"{text}; {unit(got - high)} too many" if spec.measure == "count" else \
            f"{text}; {unit(got - high)} over"
    return text


def leaves_window_at(c: Any, m: Measured, acts: Sequence[Activity], env: Any,
                     tests: Sequence[Callable]) -> datetime | None:
    """When the oldest measured activity leaves a `days` window (naive UTC), else None."""
    spec: ActivitySpec = c.activity
    if spec.window.days is None or m.first is None:
        return None
    local = m.first.replace(tzinfo=UTC).astimezone(env.tz).date()
    return start_of_day_utc(local + timedelta(days=spec.window.days), env.tz)


# --- compiling --------------------------------------------------------------------------------


_FLIP = {s.GTE: s.LT, s.GT: s.LTE, s.LTE: s.GT, s.LT: s.GTE, s.EQUALS: s.NOT_EQUALS,
         s.NOT_EQUALS: s.EQUALS}


def compile_activity(c: Any) -> Any:
    """The CompiledCriterion of an activity criterion (test, explainers, gaps)."""
    from webapp.targeting.compiler import CompiledCriterion

    spec: ActivitySpec = c.activity
    tests = _filter_tests(spec)
    label = activity_label(c)
    exclude_label = f"excluded when {label}"

    def measured(m: Any, env: Any) -> Measured:
        return measure(activities_of(m, c), spec, tests, env)

    def test(m: Any, env: Any) -> bool:
        return holds(c, measured(m, env), env)

    def get(m: Any, env: Any) -> Any:
        got = measured(m, env).value(spec.measure)
        return _shown(spec, got)

    def pred(v: Any, env: Any) -> bool:
        """The comparison on a measure as `get` shows it (amounts as numbers, moments as
        ISO text); a missing measure passes only not_equals."""
        if v is None:
            return c.operator == s.NOT_EQUALS
        if spec.measure in ("sum", "min", "max"):
            v = to_e4(v)
        elif spec.measure in ("first", "last"):
            v = datetime.fromisoformat(str(v).removesuffix("Z"))
        return _compare(c.operator, v, threshold(c, env))

    def make(excluding: bool) -> Callable[[Any, Any], dict[str, Any]]:
        op = _FLIP[c.operator] if excluding else c.operator
        shown_label = exclude_label if excluding else label

        def explain(m: Any, env: Any) -> dict[str, Any]:
            acts = activities_of(m, c)
            got = measure(acts, spec, tests, env)
            ok = holds(c, got, env)
            passed = ok is not excluding
            leaves = leaves_window_at(c, got, acts, env, tests)
            actual = {
                "value": _shown(spec, got.value(spec.measure)),
                "count": got.count,
                "summary": summary(c, got, env),
                "window": {"from": _iso(got.start), "to": _iso(got.end)},
                "leaves_window_at": _iso(leaves),
            }
            return {"kind": "criterion", "label": shown_label, "passed": passed,
                    "actual": actual, "expected": c.value,
                    "gap": None if passed else gap(c, got, env, op), "children": []}
        return explain

    def gap_fn(excluding: bool) -> Callable[[Any, Any, Any], str | None]:
        op = _FLIP[c.operator] if excluding else c.operator

        def gap_of(actual: Any, env: Any, m: Any) -> str | None:
            return gap(c, measured(m, env), env, op)
        return gap_of

    return CompiledCriterion(
        criterion=c, test=test, get=get, label=label, pred=pred, negative=False,
        exclude_label=exclude_label, explain_include=make(False), explain_exclude=make(True),
        gap_include=gap_fn(False), gap_exclude=gap_fn(True))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


def _shown(spec: ActivitySpec, got: Any) -> Any:
    if got is None:
        return None
    if spec.measure in ("sum", "min", "max"):
        return from_e4(got)
    if spec.measure in ("first", "last"):
        return _iso(got)
    return got


# --- which way more activities move an answer ------------------------------------------------

#: How a measure moves when activities are added: up, down, or (sum) as the amounts say.
_MOVES = {"count": 1, "max": 1, "last": 1, "min": -1, "first": -1}
#: The measures that have no value for a member with no activities (a comparison on them
#: fails until one comes).
_MAY_BE_MISSING = frozenset(("min", "max", "first", "last"))


def _criterion_direction(c: Any, signs: Mapping[str, set[int]]) -> int | None:
    """How one criterion's truth can move when activities (amount signs by type) are added:
    1 only from false to true, -1 only from true to false, 0 it cannot move, None either."""
    if c.kind == s.SEGMENT:
        return None  # another segment's membership may move in the same request
    if c.kind != s.ACTIVITY:
        return 0  # member attributes: recording activities leaves them as they are
    spec: ActivitySpec = c.activity
    if spec.measure == "sum":
        seen = signs.get(spec.type, set()) - {0}
        if not seen:
            return 0
        moves = seen.pop() if len(seen) == 1 else None
    else:
        moves = _MOVES[spec.measure] if spec.type in signs else 0
    if moves == 0:
        return 0
    if moves is None or c.operator in (s.EQUALS, s.NOT_EQUALS):
        return None
    rising = c.operator in (s.GTE, s.GT)   # true from some value upwards
    if spec.measure in _MAY_BE_MISSING and rising != (moves == 1):
        return None  # missing (false), then true, then false again as the value moves on
    return 1 if rising == (moves == 1) else -1


def _group_direction(mode: str, directions: list[int | None]) -> int | None:
    if None in directions or (1 in directions and -1 in directions):
        return None
    moved = 1 if 1 in directions else -1 if -1 in directions else 0
    return -moved if mode == "none" else moved


def _direction(item: Any, signs: Mapping[str, set[int]]) -> int | None:
    from webapp.targeting.criteria import Group

    if isinstance(item, Group):
        return _group_direction(item.mode, [_direction(i, signs) for i in item.items])
    return _criterion_direction(item, signs)


def only_joins(definition: Any, new: Sequence[Activity]) -> bool:
    """Whether recording these activities can only move a member into a segment with this
    (parsed) definition, never out of it: each included item can only turn true and each
    excluded one only false. A count, a maximum or the last moment only grows with more
    activities, a minimum or the first moment only shrinks, a sum grows when no new amount
    of its type is negative; so "at least 3 purchases", "spent at least 50" or "bought in
    the last 7 days" only join, "at most 2 visits" only leaves, and "exactly 3" either.
    A criterion on another segment answers no (that segment may move in the same request)."""
    signs: dict[str, set[int]] = {}
    for a_type, _at, amount, _props in new:
        signs.setdefault(a_type, set()).add(0 if not amount else 1 if amount > 0 else -1)
    include = _group_direction("all", [_direction(i, signs) for i in definition.include])
    exclude = _group_direction("none", [_direction(i, signs) for i in definition.exclude])
    return include in (0, 1) and exclude in (0, 1)


# --- what the service layer needs to load and when answers change -----------------------------


@dataclass(frozen=True, slots=True)
class Needs:
    """The activities a set of definitions reads: their types and how far back (None: all)."""

    types: frozenset[str]
    since: datetime | None


def needs(criteria: Sequence[Any], now: datetime, today: date, tz: tzinfo) -> Needs | None:
    """What loading the activities for these criteria takes (None: no activity criterion)."""
    types: set[str] = set()
    since: datetime | None = None
    unbounded = False
    for c in criteria:
        if c.kind != s.ACTIVITY:
            continue
        types.add(c.activity.type)
        start, _ = c.activity.window.bounds(now, today, tz)
        if start is None:
            unbounded = True
        elif since is None or start < since:
            since = start
    if not types:
        return None
    return Needs(frozenset(types), None if unbounded else since)


def next_change(criteria: Sequence[Any], acts: Sequence[Activity], now: datetime, today: date,
                tz: tzinfo) -> datetime | None:
    """The first instant after `now` at which these criteria may answer differently with no
    new activity: the next midnight (a `days` window moves on, "N days ago" moves), a future
    activity's moment, a `from`/`to` window edge."""
    out: datetime | None = None

    def take(moment: datetime | None) -> None:
        nonlocal out
        if moment is not None and moment > now and (out is None or moment < out):
            out = moment

    types: set[str] = set()
    for c in criteria:
        if c.kind != s.ACTIVITY:
            continue
        spec: ActivitySpec = c.activity
        types.add(spec.type)
        if spec.window.days is not None or spec.measure in ("first", "last"):
            take(start_of_day_utc(today + timedelta(days=1), tz))
        lo, hi = spec.window.bounds(now, today, tz)
        take(lo)
        take(hi)
        if c.date_value is not None and c.date_value.days_ago is None:
            take(c.date_value.as_utc(now, tz))
    for a_type, at, _amount, _props in acts:
        if a_type in types:
            take(at)
    return out


__all__ = [
    "AMOUNT_SCALE", "Activity", "ActivitySpec", "FIELD_PREFIX", "MEASURES", "Measured", "Needs",
    "OPERATORS", "Window", "activity_label", "amount_e4", "amount_problem", "compile_activity",
    "from_e4", "holds", "is_activity_field", "measure", "measuring_any", "needs", "next_change",
    "only_joins", "parse_activity_criterion", "summary", "to_e4",
]
