"""Parsing and validating criteria and segment definitions (SPEC §3), and their readable labels.

A criterion is ``{"field", "operator", "value", "case_insensitive"?}``. Parsing normalizes the
accepted spellings (``customFields.x``, ``createdAt``, ``updatedAt``, ``caseInsensitive``) to the
canonical snake_case form (a custom-field path in its one spelling, see
:mod:`webapp.targeting.paths`) and checks the value's shape against the field's type; anything
refused raises :class:`SegmentDefinitionError` naming the criterion, e.g.
``include[2] (points > "abc"): points takes a number``.

Include and exclude may also hold groups (SPEC §8): ``{"all": [...]}``, ``{"any": [...]}`` and
``{"none": [...]}`` of criteria and groups, nested at most three deep. A group is parsed into a
:class:`Group`; a criterion inside one is named by its path, e.g. ``include[0].any[1]``. An
empty group is refused (it would be an always-true or always-false branch nobody means), and
the per-definition limits count every criterion in every group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from webapp.targeting import schema as s
from webapp.targeting.errors import SegmentDefinitionError
from webapp.targeting.operators import REGISTRY
from webapp.targeting.paths import (
    CUSTOM_ROOT,
    PathError,
    custom_field,
    key_problem,
    parse_path,
    path_steps,
)
from webapp.targeting.values import (
    format_number,
    is_number,
    parse_iso,
    start_of_day_utc,
    to_utc_naive,
    valid_number,
)

_ALLOWED_KEYS = frozenset({"field", "operator", "value", "case_insensitive"})


@dataclass(frozen=True, slots=True)
class DateValue:
    """A criterion's date: an absolute ISO date/datetime or ``{"days_ago": N}``."""

    days_ago: int | None = None
    day: date | None = None          # a date without a time
    moment: datetime | None = None   # a datetime (aware, or naive = program time zone)

    def as_date(self, today: date) -> date:
        """The value as a calendar date (for `birthday`)."""
        if self.days_ago is not None:
            return today - timedelta(days=self.days_ago)
        assert self.day is not None
        return self.day

    def as_utc(self, now_utc: datetime, tz: tzinfo) -> datetime:
        """The value as a naive UTC instant (for `created_at`, `updated_at`)."""
        if self.days_ago is not None:
            return now_utc - timedelta(days=self.days_ago)
        if self.day is not None:
            return start_of_day_utc(self.day, tz)
        assert self.moment is not None
        return to_utc_naive(self.moment, tz)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One validated criterion in canonical form."""

    field: str
    operator: str
    value: Any = None
    case_insensitive: bool = False
    kind: str = s.STRING
    path: tuple[str, ...] = ()
    where: str = ""
    date_value: DateValue | None = None
    activity: Any = None  # an ActivitySpec for an activity criterion (targeting.behaviour)

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form."""
        out: dict[str, Any] = {"field": self.field, "operator": self.operator}
        if self.activity is not None:
            out["value"] = self.value
            out["activity"] = self.activity.to_dict()
            return out
        if self.operator not in (s.EXISTS, s.NOT_EXISTS):
            out["value"] = self.value
        if self.case_insensitive:
            out["case_insensitive"] = True
        return out


@dataclass(frozen=True, slots=True)
class Group:
    """A validated group: `mode` is all, any or none; `items` are criteria and groups."""

    mode: str
    items: tuple[Criterion | Group, ...]
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form, ``{mode: [items]}``."""
        return {self.mode: [item.to_dict() for item in self.items]}

    def criteria(self) -> tuple[Criterion, ...]:
        """Every criterion in the group, nested ones included, in order."""
        return tuple(walk_criteria(self.items))


Item = Criterion | Group


def walk_criteria(items: Any) -> Iterator[Criterion]:
    """The criteria among parsed items, walking into groups (depth first, in order)."""
    for item in items:
        if isinstance(item, Group):
            yield from walk_criteria(item.items)
        else:
            yield item


def walk_groups(items: Any) -> Iterator[Group]:
    """The groups among parsed items, nested ones included (outer first)."""
    for item in items:
        if isinstance(item, Group):
            yield item
            yield from walk_groups(item.items)


@dataclass(frozen=True, slots=True)
class Definition:
    """A validated segment definition; include and exclude hold criteria and groups."""

    kind: str
    include: tuple[Criterion | Group, ...] = ()
    exclude: tuple[Criterion | Group, ...] = ()
    references: frozenset[int] = field(default_factory=frozenset)

    def to_dict(self) -> dict[str, Any]:
        """The canonical stored form."""
        return {"kind": self.kind, "include": [c.to_dict() for c in self.include],
                "exclude": [c.to_dict() for c in self.exclude]}

    def criteria(self) -> tuple[Criterion, ...]:
        """Every criterion, include then exclude, nested ones included."""
        return tuple(walk_criteria(self.include + self.exclude))

    @property
    def has_groups(self) -> bool:
        """Whether include or exclude holds a group (a flat definition holds none)."""
        return any(isinstance(i, Group) for i in self.include + self.exclude)


def canonical_field(name: Any) -> str:
    """The canonical snake_case spelling of a field name (unknown names are returned as given)."""
    if not isinstance(name, str):
        return name
    if name.startswith((s.CUSTOM_ALIAS_PREFIX, "customFields[")):
        return "custom_fields" + name[len("customFields"):]
    return s.FIELD_ALIASES.get(name, name)


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _describe_raw(raw: Any) -> str:
    if not isinstance(raw, dict):
        return _show(raw)
    fld = raw.get("field", "?")
    op = raw.get("operator", "?")
    fld_text = fld if isinstance(fld, str) else _show(fld)
    text = f"{fld_text} {op if isinstance(op, str) else _show(op)}"
    if "value" in raw and raw.get("value") is not None:
        text += " " + _show(raw["value"])
    return text


def _is_days_ago(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"days_ago"}


def _no_nulls(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return all(_no_nulls(v) for v in value)
    if isinstance(value, dict):
        return all(_no_nulls(v) for v in value.values())
    return True


def _json_value_problem(value: Any, depth: int = 0) -> str | None:
    """Why a custom-field `equals` value is not usable, or None."""
    if depth > 8:
        return "nests too deeply"
    if value is None:
        return "null is not a value; use exists or not_exists"
    if isinstance(value, bool | str):
        return None
    if is_number(value):
        return None if valid_number(value) else "is not a finite 64-bit number"
    if isinstance(value, list):
        for item in value:
            problem = _json_value_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"object key {_show(key)} is not a string"
            problem = key_problem(key)
            if problem:
                return f"object {problem}"
            problem = _json_value_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"{_show(value)} is not a JSON value"


def parse_criterion(raw: Any, where: str = "criterion") -> Criterion:
    """Validate one criterion and return it in canonical form; raises SegmentDefinitionError."""
    label = f"{where} ({_describe_raw(raw)})"

    def fail(message: str) -> SegmentDefinitionError:
        return SegmentDefinitionError(f"{label}: {message}", where)

    if not isinstance(raw, dict):
        raise fail("a criterion is an object with field, operator and value")
    raw = dict(raw)
    if isinstance(raw.get("field"), str) and raw["field"].startswith("activity."):
        from webapp.targeting.behaviour import parse_activity_criterion
        return parse_activity_criterion(raw, where, label)
    if "caseInsensitive" in raw:
        if "case_insensitive" in raw:
            raise fail("give case_insensitive once")
        raw["case_insensitive"] = raw.pop("caseInsensitive")
    unknown = sorted(str(k) for k in raw if k not in _ALLOWED_KEYS)
    if unknown:
        raise fail(f"unknown key {', '.join(unknown)} (a criterion has field, operator, value "
                   "and optionally case_insensitive)")
    name = raw.get("field")
    if not isinstance(name, str) or not name:
        raise fail("field is missing")
    fld = canonical_field(name)
    kind = s.field_type(fld)
    path: tuple[str, ...] = ()
    if kind is None:
        if fld == "custom_fields":
            raise fail("name a custom field, e.g. custom_fields.vip")
        raise fail(f"unknown field {fld!r}; fields are {', '.join(s.FIELDS)}")
    if kind == s.ANY:
        try:
            path = parse_path(fld[len(CUSTOM_ROOT):])
        except PathError as exc:
            raise fail(str(exc)) from None
        fld = custom_field(path)
    op = raw.get("operator")
    if not isinstance(op, str) or op not in s.OPERATORS:
        raise fail(f"unknown operator {_show(op)}; operators are {', '.join(s.OPERATORS)}")
    if op not in s.OPERATORS_BY_TYPE[kind]:
        if op in s.ORDERING and kind in (s.STRING, s.LIST):
            raise fail(f"{fld} is text and cannot be ordered; use equals, in or contains")
        fits = ", ".join(s.OPERATORS_BY_TYPE[kind])
        raise fail(f"{op} does not apply to {fld} ({kind}); use one of {fits}")
    ci = raw.get("case_insensitive", False)
    if ci is None:
        ci = False
    if not isinstance(ci, bool):
        raise fail("case_insensitive is true or false")
    if ci and kind not in (s.STRING, s.LIST, s.ANY):
        raise fail(f"case_insensitive applies to text, and {fld} is {kind}")
    has_value = "value" in raw and raw["value"] is not None
    value = raw.get("value")
    date_value: DateValue | None = None

    operator = REGISTRY[op]
    if operator.shape == "none":
        if has_value:
            raise fail(f"{op} takes no value")
        value = None
    elif not has_value:
        raise fail(f"{op} needs a value")
    elif operator.check is not None:
        problem = operator.check(value, kind)
        if problem:
            raise fail(problem)
    elif operator.shape == "list":
        if not isinstance(value, list):
            raise fail(f"{op} takes a list")
        value = list(value)
        if kind == s.SEGMENT:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise fail("segment takes a list of segment ids (whole numbers)")
        elif kind == s.STRING or kind == s.LIST:
            if not all(isinstance(v, str) for v in value):
                raise fail(f"{fld} takes a list of strings")
        elif kind == s.INTEGER:
            if not all(is_number(v) for v in value):
                raise fail(f"{fld} takes a list of numbers")
            if not all(valid_number(v) for v in value):
                raise fail("a number is not finite or does not fit 64 bits")
        else:  # ANY
            for v in value:
                if not (isinstance(v, str | bool) or is_number(v)):
                    raise fail(f"{op} takes a list of strings, numbers or booleans")
                if is_number(v) and not valid_number(v):
                    raise fail("a number is not finite or does not fit 64 bits")
    elif kind in (s.DATE, s.DATETIME):
        date_value = _parse_date_value(value, fld, kind, fail)
    elif kind == s.STRING:
        if not isinstance(value, str):
            raise fail(f"{fld} takes a string")
    elif kind == s.INTEGER:
        if not is_number(value):
            raise fail(f"{fld} takes a number")
        if not valid_number(value):
            raise fail("the number is not finite or does not fit 64 bits")
    elif kind == s.LIST:
        if op in (s.EQUALS, s.NOT_EQUALS):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise fail(f"{op} on {fld} compares the whole list: give a list of strings")
            value = list(value)
        elif not isinstance(value, str):
            raise fail(f"{fld} {op} takes a string (one badge id)")
    else:  # ANY
        if op in s.ORDERING:
            if isinstance(value, str):
                raise fail("ordering two strings is refused; give a number")
            if not is_number(value):
                raise fail(f"{op} takes a number")
            if not valid_number(value):
                raise fail("the number is not finite or does not fit 64 bits")
        elif op in (s.CONTAINS, s.NOT_CONTAINS):
            if not (isinstance(value, str | bool) or is_number(value)):
                raise fail(f"{op} takes a string, number or boolean")
            if is_number(value) and not valid_number(value):
                raise fail("the number is not finite or does not fit 64 bits")
        else:
            problem = _json_value_problem(value)
            if problem:
                raise fail(f"the value {problem}")
    return Criterion(field=fld, operator=op, value=value, case_insensitive=ci, kind=kind,
                     path=path, where=where, date_value=date_value)


def _parse_date_value(value: Any, fld: str, kind: str, fail: Any) -> DateValue:
    if _is_days_ago(value):
        n = value["days_ago"]
        if not (isinstance(n, int) and not isinstance(n, bool)) or not 0 <= n <= s.MAX_DAYS_AGO:
            raise fail(f"days_ago takes a whole number of days from 0 to {s.MAX_DAYS_AGO:,}")
        return DateValue(days_ago=n)
    if isinstance(value, dict):
        raise fail('a relative date is {"days_ago": N}')
    if not isinstance(value, str):
        raise fail(f"{fld} takes a date (ISO 8601, e.g. 2024-06-15) or {{\"days_ago\": N}}")
    try:
        parsed = parse_iso(value)
    except ValueError:
        raise fail(f"{value!r} is not an ISO 8601 date or datetime "
                   "(2024-06-15, 2024-06-15T09:30:00Z, 2024-06-15T09:30:00+02:00)") from None
    if isinstance(parsed, datetime):
        if kind == s.DATE:
            raise fail(f"{fld} is a date: give YYYY-MM-DD without a time")
        return DateValue(moment=parsed)
    return DateValue(day=parsed)


def is_group(raw: Any) -> bool:
    """Whether a raw item is meant as a group: an object with any, all or none and no field."""
    return (isinstance(raw, dict) and "field" not in raw
            and any(k in raw for k in s.GROUP_MODES))


def group_parts(raw: dict, where: str, depth: int) -> tuple[str, list[Any]]:
    """A raw group's mode and its raw items, checked; raises SegmentDefinitionError.

    `depth` is the group's own depth (1 for a group directly in include or exclude).
    """
    modes = [k for k in raw if k in s.GROUP_MODES]
    if len(raw) != 1:
        extra = sorted(str(k) for k in raw if k not in s.GROUP_MODES)
        if len(modes) > 1:
            problem = f"it has {' and '.join(modes)}; give one of them per group (nest groups " \
                      "to combine them)"
        else:
            problem = f"unknown key {', '.join(extra)} (a group has only one key: any, all " \
                      "or none)"
        raise SegmentDefinitionError(f"{where}: {problem}", where)
    mode = modes[0]
    if depth > s.MAX_GROUP_DEPTH:
        raise SegmentDefinitionError(
            f"{where} ({mode} group): groups nest at most {s.MAX_GROUP_DEPTH} deep; this one "
            f"is at depth {depth}", where)
    items = raw[mode]
    if not isinstance(items, list | tuple):
        raise SegmentDefinitionError(
            f"{where} ({mode} group): {mode} is a list of criteria and groups", where)
    if not items:
        raise SegmentDefinitionError(
            f"{where} ({mode} group): the group is empty; add a criterion to it or remove it",
            where)
    return mode, list(items)


def parse_item(raw: Any, where: str, depth: int = 0) -> Criterion | Group:
    """Validate a criterion or a group at `depth` (0 directly in include or exclude)."""
    if is_group(raw):
        mode, items = group_parts(raw, where, depth + 1)
        return Group(mode, tuple(parse_item(x, f"{where}.{mode}[{i}]", depth + 1)
                                 for i, x in enumerate(items)), where)
    return parse_criterion(raw, where)


def has_activity_criteria(raw: Any) -> bool:
    """Whether a raw (stored) definition has an activity criterion (cheap: no validation)."""
    if not isinstance(raw, dict):
        return False
    return any(isinstance(c, dict) and isinstance(c.get("field"), str)
               and c["field"].startswith("activity.")
               for c in raw_criteria([*(raw.get("include") or ()), *(raw.get("exclude") or ())]))


def raw_criteria(items: Any) -> Iterator[Any]:
    """The raw criteria among raw (e.g. stored) items, walking into groups, in order."""
    if not isinstance(items, list | tuple):
        return
    for raw in items:
        if is_group(raw):
            for key in s.GROUP_MODES:
                yield from raw_criteria(raw.get(key))
        else:
            yield raw


def count_criteria(items: Any) -> int:
    """How many criteria raw items hold, counted inside groups too (for the limits)."""
    if not isinstance(items, list | tuple):
        return 0
    return sum(1 for _ in raw_criteria(items))


def parse_definition(raw: Any, *, max_include: int = s.MAX_INCLUDE,
                     max_exclude: int = s.MAX_EXCLUDE) -> Definition:
    """Validate a whole segment definition ``{kind, include, exclude}``."""
    if not isinstance(raw, dict):
        raise SegmentDefinitionError("a segment definition is an object with kind, include and "
                                     "exclude")
    kind = raw.get("kind", "dynamic")
    if kind not in ("static", "dynamic"):
        raise SegmentDefinitionError(f"kind is static or dynamic, not {_show(kind)}")
    groups: dict[str, tuple[Criterion | Group, ...]] = {}
    for group, limit in (("include", max_include), ("exclude", max_exclude)):
        items = raw.get(group)
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            raise SegmentDefinitionError(f"{group} is a list of criteria", group)
        if kind == "static" and items:
            raise SegmentDefinitionError(
                f"{group}: a static segment has no criteria; its members are its list", group)
        count = count_criteria(items)
        if count > limit:
            raise SegmentDefinitionError(
                f"{group}: at most {limit} criteria per segment ({count} given)", group)
        groups[group] = tuple(parse_item(c, f"{group}[{i}]") for i, c in enumerate(items))
    refs = frozenset(v for c in walk_criteria(groups["include"] + groups["exclude"])
                     if c.kind == s.SEGMENT for v in c.value)
    return Definition(kind=kind, include=groups["include"], exclude=groups["exclude"],
                      references=refs)


def referenced_segments(raw: Any) -> frozenset[int]:
    """The segment ids a definition's `segment` criteria name."""
    return parse_definition(raw).references


def fields_used(raw: Any) -> frozenset[str]:
    """The member attributes a definition reads (`age` reads `birthday`; custom keys by top key)."""
    out: set[str] = set()
    d = parse_definition(raw)
    for c in d.criteria():
        if c.kind == s.ANY:
            out.add("custom_fields")
        elif c.kind == s.ACTIVITY:
            out.add("activities")
        elif c.field == "age":
            out.add("birthday")
        elif c.kind != s.SEGMENT:
            out.add(c.field)
    return frozenset(out)


def is_time_dependent(raw: Any) -> bool:
    """True when membership can change with time alone (relative dates, age, activity windows
    and activities dated in the future)."""
    d = parse_definition(raw)
    return any(c.field == "age" or c.kind == s.ACTIVITY
               or (c.date_value is not None and c.date_value.days_ago is not None)
               for c in d.criteria())


# --- labels -------------------------------------------------------------------------------

_UNITS = {"points": "points", "xp": "XP", "coins": "coins", "age": "years"}
_DATE_VERBS = {"created_at": "joined", "updated_at": "updated", "birthday": "born"}


def _field_name(c: Criterion) -> str:
    if c.kind == s.ANY:
        return "custom field " + path_steps(c.path).removeprefix(".")
    return c.field


def _render(c: Criterion, v: Any) -> str:
    if c.kind == s.ANY:
        return _show(v)
    if is_number(v):
        return format_number(v)
    return str(v)


def _join(values: list[str], word: str) -> str:
    if not values:
        return "(nothing)"
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + f" {word} " + values[-1]


def _date_text(c: Criterion) -> str:
    dv = c.date_value
    assert dv is not None
    if dv.days_ago is not None:
        return "today" if dv.days_ago == 0 else (
            "1 day ago" if dv.days_ago == 1 else f"{dv.days_ago:,} days ago")
    return str(c.value)


def criterion_label(c: Criterion, segment_names: dict[Any, str] | None = None) -> str:
    """Readable words for one criterion: 'points at least 1,000', 'has badge banned'."""
    op, v = c.operator, c.value
    ci = " (ignoring case)" if c.case_insensitive and c.field != "email" else ""
    if c.kind == s.ACTIVITY:
        from webapp.targeting.behaviour import activity_label
        return activity_label(c)
    if c.kind == s.SEGMENT:
        names = [f"{(segment_names or {}).get(i) or f'#{i}'}" for i in v]
        if op == s.IN:
            return "in segment " + _join(names, "or") if names else "in no segment (never)"
        return "not in segment " + _join(names, "or") if names else "in any segment (always)"
    if c.kind == s.LIST:
        if op == s.CONTAINS:
            return f"has badge {v}{ci}"
        if op == s.NOT_CONTAINS:
            return f"does not have badge {v}{ci}"
        if op == s.IN:
            return f"has badge {_join(list(v), 'or')}{ci}" if v else "has a badge in (nothing)"
        if op == s.NOT_IN:
            return f"has none of the badges {_join(list(v), 'and')}{ci}" if v else (
                "has none of no badges (always)")
        if op == s.EQUALS:
            return f"badges are exactly [{', '.join(v)}]{ci}"
        if op == s.NOT_EQUALS:
            return f"badges are not exactly [{', '.join(v)}]{ci}"
    name = _field_name(c)
    if c.field == "age" and op in (s.EXISTS, s.NOT_EXISTS):
        name = "birthday"
    if op == s.EXISTS:
        return f"has {name}" if c.kind != s.ANY else f"{name} is set"
    if op == s.NOT_EXISTS:
        return f"has no {name}" if c.kind != s.ANY else f"{name} is not set"
    if c.kind in (s.DATE, s.DATETIME):
        verb = _DATE_VERBS[c.field]
        if op == s.EQUALS:
            return f"{verb} on {_date_text(c)}"
        if op == s.NOT_EQUALS:
            return f"not {verb} on {_date_text(c)}"
        return f"{verb} {REGISTRY[op].label_phrase(c.kind)} {_date_text(c)}"
    if op in s.ORDERING:
        return f"{name} {REGISTRY[op].label_phrase(c.kind)} {_render(c, v)}"
    if op in (s.EQUALS, s.NOT_EQUALS):
        return f"{name} {REGISTRY[op].label_phrase(c.kind)} {_render(c, v)}{ci}"
    if op == s.IN:
        return (f"{name} is {_join([_render(c, x) for x in v], 'or')}{ci}" if v
                else f"{name} is one of (nothing)")
    if op == s.NOT_IN:
        shown = [_render(c, x) for x in v]
        if not shown:
            return f"{name} is not one of (nothing)"
        if len(shown) == 1:
            return f"{name} is not {shown[0]}{ci}"
        if len(shown) == 2:
            return f"{name} is neither {shown[0]} nor {shown[1]}{ci}"
        return f"{name} is none of {', '.join(shown)}{ci}"
    return f"{name} {REGISTRY[op].label_phrase(c.kind)} {_show(v)}{ci}"


def _who(label: str) -> str:
    if label.startswith("has no "):
        return "members with no " + label[len("has no "):]
    if label.startswith("has "):
        return "members with " + label[len("has "):]
    if label.startswith("does not have "):
        return "members without " + label[len("does not have "):]
    if label.startswith(("in segment", "not in segment", "in no", "in any")):
        return "members " + label
    if label.startswith(tuple(f"{v} " for v in _DATE_VERBS.values())):
        return "members who " + label
    if label.startswith("not "):
        return "members " + label
    return "members whose " + label


GROUP_WORDS = {"all": "all of these hold", "any": "at least one of these holds",
               "none": "none of these holds"}
"""What each kind of group asks, in the words the explanation and the builder use."""


def group_label(g: Group, segment_names: dict[Any, str] | None = None) -> str:
    """Readable words for a group: '(tier is gold and points at least 1,000)', 'not (a or b)'."""
    parts = [item_label(i, segment_names) for i in g.items]
    if g.mode == "all":
        return "(" + " and ".join(parts) + ")"
    if g.mode == "any":
        return "(" + " or ".join(parts) + ")"
    return "not (" + " or ".join(parts) + ")"


def item_label(item: Criterion | Group, segment_names: dict[Any, str] | None = None) -> str:
    """Readable words for a criterion or a group."""
    if isinstance(item, Group):
        return group_label(item, segment_names)
    return criterion_label(item, segment_names)


def describe_definition(segment: Any, segment_names: dict[Any, str] | None = None) -> str:
    """Readable words for a whole definition: 'tier is gold, and points at least 1,000, …'."""
    d = segment if isinstance(segment, Definition) else parse_definition(segment)
    if d.kind == "static":
        return "members on the list"
    inc = [item_label(c, segment_names) for c in d.include]
    if len(d.include) == 1 and isinstance(d.include[0], Group) and d.include[0].mode != "none":
        inc = [inc[0][1:-1]]  # one group alone needs no parentheses around it
    text = ", and ".join(inc) if inc else "everyone"
    if d.exclude:
        text += ", except " + " or ".join(
            "members matching " + group_label(c, segment_names) if isinstance(c, Group)
            else "members with " + criterion_label(c) if c.kind == s.ACTIVITY
            else _who(criterion_label(c, segment_names)) for c in d.exclude)
    return text


__all__ = [
    "GROUP_WORDS", "Criterion", "DateValue", "Definition", "Group", "Item", "canonical_field",
    "count_criteria", "criterion_label", "describe_definition", "fields_used", "group_label",
    "has_activity_criteria",
    "group_parts", "is_group", "is_time_dependent", "item_label", "parse_criterion",
    "parse_definition", "parse_item", "raw_criteria", "referenced_segments", "walk_criteria",
    "walk_groups",
]
