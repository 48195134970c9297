"""The criteria builder: form rows <-> criteria, with the field and operator tables of the core.

Each row of the builder posts flat fields named ``<group>-<n>-<name>`` (group is include or
exclude, n a row number that only has to be unique). A row becomes a criterion dict that the
targeting core validates; the core's message is shown next to the row.

Groups (any / all / none, SPEC §8) are boxes posted the same way: ``<group>-<n>-mode`` says
there is a box numbered n, and every row and box posts ``<group>-<n>-parent``, the id of the
box it sits in (empty at the top). Rows and boxes share the numbering, and the number orders
the items of a box, so a plain form post (no JavaScript) carries the whole tree.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from webapp.targeting import SegmentDefinitionError, parse_criterion
from webapp.targeting import schema as ts
from webapp.targeting.operators import REGISTRY
from webapp.targeting.paths import CUSTOM_ROOT, PathError, custom_field, parse_path, path_steps

#: The prefix of a declared custom field in the builder's field list (Member fields registry).
DECLARED = "declared:"
#: The custom-field operators offered for each declared type (dates compare as equal / in).
DECLARED_OPERATORS: dict[str, tuple[str, ...]] = {
    "string": (ts.EQUALS, ts.NOT_EQUALS, ts.IN, ts.NOT_IN, ts.CONTAINS, ts.NOT_CONTAINS,
               ts.EXISTS, ts.NOT_EXISTS),
    "number": (ts.EQUALS, ts.NOT_EQUALS, ts.IN, ts.NOT_IN, ts.GTE, ts.GT, ts.LTE, ts.LT,
               ts.EXISTS, ts.NOT_EXISTS),
    "boolean": (ts.EQUALS, ts.NOT_EQUALS, ts.EXISTS, ts.NOT_EXISTS),
    "date": (ts.EQUALS, ts.NOT_EQUALS, ts.IN, ts.NOT_IN, ts.EXISTS, ts.NOT_EXISTS),
    "list": (ts.CONTAINS, ts.NOT_CONTAINS, ts.EQUALS, ts.NOT_EQUALS, ts.EXISTS, ts.NOT_EXISTS),
}
#: The JSON type the builder types a declared field's values as.
DECLARED_JSON_TYPE = {"string": "string", "number": "number", "boolean": "boolean",
                      "date": "string", "list": "list"}

GROUPS = ("include", "exclude")

#: Fields offered by the builder, in order, with their labels.
FIELD_CHOICES: tuple[tuple[str, str], ...] = (
    ("tier", "Tier"), ("points", "Points"), ("xp", "XP"), ("coins", "Coins"),
    ("badges", "Badges"), ("age", "Age"), ("birthday", "Birthday"),
    ("created_at", "Joined (created at)"), ("updated_at", "Last updated"),
    ("email", "Email"), ("external_id", "External id"),
    ("custom_fields", "Custom field…"), ("segment", "In a segment"),
    ("activity", "Activity…"),
)
FIELD_LABELS = dict(FIELD_CHOICES)

#: What an activity row measures, as the builder words it (webapp.targeting.behaviour).
MEASURE_CHOICES: tuple[tuple[str, str], ...] = (
    ("count", "how many times"), ("sum", "total amount"), ("min", "smallest amount"),
    ("max", "largest amount"), ("first", "first time"), ("last", "last time"))
#: An activity row's window: the last N days, between two dates, or all time.
WINDOW_CHOICES: tuple[tuple[str, str], ...] = (
    ("days", "in the last"), ("range", "between"), ("all", "ever"))

JSON_TYPES: tuple[tuple[str, str], ...] = (
    ("string", "text"), ("number", "number"), ("boolean", "true / false"),
    ("list", "list of text"),
)

_NAME_RE = re.compile(r"^(include|exclude)-(\d{1,4})-field$")
_GROUP_RE = re.compile(r"^(include|exclude)-(\d{1,4})-mode$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_PREFIX_RE = re.compile(r"^(include|exclude)\[\d+\](?:\.(?:all|any|none)\[\d+\])* \(.*?\): ",
                        re.DOTALL)
#: The kinds of group, as the builder words them.
MODE_CHOICES: tuple[tuple[str, str], ...] = (
    ("any", "any of"), ("all", "all of"), ("none", "none of"))
MODES = dict(MODE_CHOICES)
#: What one builder row may hold (a list of values is typed into the one value box).
VALUE_MAX = 10_000
KEY_MAX = 200


def field_kind(name: str) -> str | None:
    """The core's type for a builder field ('custom_fields' stands for any custom key)."""
    if name == "custom_fields":
        return ts.ANY
    if name == "activity":
        return ts.ACTIVITY
    return ts.field_type(name) if name else None


def operator_choices(kind: str | None) -> list[tuple[str, str]]:
    """(operator, words) that fit a field type, from the core's table."""
    if kind is None:
        return []
    return [(op, REGISTRY[op].builder_words(kind)) for op in ts.OPERATORS_BY_TYPE[kind]]


def short_message(message: str) -> str:
    """A core message without its 'include[2] (points > 5): ' prefix, for display by the row."""
    return _PREFIX_RE.sub("", message, count=1)


def _number(text: str) -> int | float | None:
    text = text.strip().replace(",", "").replace("_", "")
    if _INT_RE.match(text):
        return int(text)
    if _NUM_RE.match(text):
        return float(text)
    return None


def split_list(text: str) -> list[str]:
    """Comma-separated values, trimmed, empties dropped, order kept."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class RowProblem(ValueError):
    """A row that cannot become a criterion yet (the message says what is missing)."""

    def __init__(self, message: str, *, incomplete: bool = False):
        super().__init__(message)
        self.incomplete = incomplete


@dataclass
class Row:
    """One builder row, as posted or as loaded from a stored criterion."""

    group: str
    index: int
    field: str = ""
    parent: str = ""
    key: str = ""
    json_type: str = "string"
    operator: str = ""
    value: str = ""
    ci: bool = False
    date_mode: str = "date"
    days: str = ""
    segment_query: str = ""
    previous_field: str = ""
    error: str | None = None
    #: What an unfinished row still needs, shown by the row ("left out of the preview").
    unfinished: str | None = None
    picks: list[dict] = dataclasses.field(default_factory=list)
    names: dict[int, str] = dataclasses.field(default_factory=dict)
    #: The declaration of this row's custom field (webapp.services.attributes.Declared).
    declared: Any = None
    # An activity row: what it measures, of which type, over which window, with which filter.
    measure: str = "count"
    activity_type: str = ""
    window: str = "days"
    window_days: str = "30"
    window_from: str = ""
    window_to: str = ""
    prop_key: str = ""
    prop_op: str = ts.EQUALS
    prop_value: str = ""

    is_group = False

    @property
    def field_choice(self) -> str:
        """The value of the row's field in the field list (a declared field by its key)."""
        return f"{DECLARED}{self.key}" if self.declared is not None else self.field

    def declare(self, registry: Mapping[str, Any] | None) -> None:
        """Mark a custom-field row whose key is declared: its values are typed as declared."""
        found = (registry or {}).get(self.key) if self.field == "custom_fields" else None
        self.declared = found
        if found is not None:
            self.json_type = DECLARED_JSON_TYPE[found.type]

    @property
    def allowed(self) -> list[str]:
        """The declared field's allowed values as the value box shows them."""
        return [_plain(v) for v in self.declared.allowed] if self.declared is not None else []

    @property
    def id(self) -> str:
        """The row's DOM id and form prefix, e.g. include-2."""
        return f"{self.group}-{self.index}"

    def name(self, part: str) -> str:
        """The form field name of one of the row's inputs."""
        return f"{self.id}-{part}"

    @property
    def kind(self) -> str | None:
        """The field's type in the core's vocabulary."""
        return field_kind(self.field)

    @property
    def operators(self) -> list[tuple[str, str]]:
        """The operators this row's field takes (a declared field: those that fit its type)."""
        choices = operator_choices(self.kind)
        if self.declared is None:
            return choices
        fitting = DECLARED_OPERATORS[self.declared.type]
        return sorted((c for c in choices if c[0] in fitting), key=lambda c: fitting.index(c[0]))

    @property
    def value_kind(self) -> str | None:
        """The type of the value box: an activity's count or amount is a number, its first
        or last time a date."""
        if self.kind == ts.ACTIVITY:
            return ts.DATETIME if self.measure in ("first", "last") else ts.INTEGER
        return self.kind

    @property
    def needs_value(self) -> bool:
        """Whether the chosen operator takes a value."""
        return self.operator not in (ts.EXISTS, ts.NOT_EXISTS)

    @property
    def takes_list(self) -> bool:
        """Whether the value is a list of values (shown as tags)."""
        return self.kind == ts.SEGMENT or self.operator in (ts.IN, ts.NOT_IN) or (
            self.kind == ts.LIST and self.operator in (ts.EQUALS, ts.NOT_EQUALS)) or (
            self.kind == ts.ANY and self.json_type == "list"
            and self.operator in (ts.EQUALS, ts.NOT_EQUALS))

    @property
    def tags(self) -> list[str]:
        """The list values as typed, for display as tags."""
        return split_list(self.value) if self.takes_list else []

    @property
    def text_like(self) -> bool:
        """Whether the case-insensitive switch applies."""
        return self.kind in (ts.STRING, ts.LIST) and self.field != "email" or (
            self.kind == ts.ANY and self.json_type in ("string", "list"))

    @property
    def blank(self) -> bool:
        """A row nobody has filled in yet."""
        return not self.field

    @classmethod
    def from_form(cls, form: MultiDict, group: str, index: int,
                  registry: Mapping[str, Any] | None = None) -> Row:
        """Read a row from posted form data (`registry`: the declared custom fields)."""
        def get(part: str, default: str = "") -> str:
            return (form.get(f"{group}-{index}-{part}") or default).strip()

        chosen, key = get("field"), get("key")
        if chosen.startswith(DECLARED):  # a declared custom field picked from the field list
            chosen, key = "custom_fields", chosen[len(DECLARED):]
        # A list of allowed values is picked in a multiple select: one form value each.
        values = [v for v in form.getlist(f"{group}-{index}-value") if v.strip()]
        row = cls(group=group, index=index, field=chosen, parent=get("parent"),
                  key=key,
                  json_type=get("json_type", "string"), operator=get("operator"),
                  value=", ".join(values) if len(values) > 1 else (
                      form.get(f"{group}-{index}-value") or ""),
                  ci=bool(form.get(f"{group}-{index}-ci")), date_mode=get("date_mode", "date"),
                  days=get("days"), segment_query=get("segment_q"),
                  previous_field=get("previous_field"),
                  measure=get("measure", "count"), activity_type=get("activity_type"),
                  window=get("window", "days"),
                  window_days=(form.get(f"{group}-{index}-window_days", "30") or "").strip(),
                  window_from=get("window_from"), window_to=get("window_to"),
                  prop_key=get("prop_key"), prop_op=get("prop_op", ts.EQUALS),
                  prop_value=get("prop_value"))
        if row.prop_op not in ts.OPERATORS_BY_TYPE[ts.ANY]:
            row.prop_op = ts.EQUALS
        if row.measure not in dict(MEASURE_CHOICES):
            row.measure = "count"
        if row.window not in dict(WINDOW_CHOICES):
            row.window = "days"
        row.declare(registry)
        if row.previous_field and row.previous_field != row.field_choice:
            # A new field: the old operator and value belong to the old field's type.
            row.operator, row.value, row.days, row.ci = "", "", "", False
        if row.field and row.field not in FIELD_LABELS:
            row.error = f"unknown field {row.field!r}"
        if row.json_type not in dict(JSON_TYPES):
            row.json_type = "string"
        if row.date_mode not in ("date", "days_ago"):
            row.date_mode = "date"
        valid_ops = [op for op, _ in row.operators]
        if valid_ops and row.operator not in valid_ops:
            row.operator = valid_ops[0]
        return row

    @classmethod
    def from_criterion(cls, criterion: dict, group: str, index: int, parent: str = "",
                       registry: Mapping[str, Any] | None = None) -> Row:
        """A row showing a stored (canonical) criterion (`registry`: the declared fields)."""
        fld = criterion.get("field", "")
        op = criterion.get("operator", "")
        value = criterion.get("value")
        row = cls(group=group, index=index, field=fld, operator=op, parent=parent,
                  ci=bool(criterion.get("case_insensitive")))
        if isinstance(fld, str) and fld.startswith("activity."):
            row.field = "activity"
            row.activity_from(criterion)
        elif fld.startswith((ts.CUSTOM_PREFIX, ts.CUSTOM_QUOTED_PREFIX)):
            row.field = "custom_fields"
            row.key = key_text(fld)
            sample = value[0] if isinstance(value, list) and value else value
            if isinstance(value, list) and op in (ts.EQUALS, ts.NOT_EQUALS):
                row.json_type = "list"
            elif isinstance(sample, bool):
                row.json_type = "boolean"
            elif isinstance(sample, int | float):
                row.json_type = "number"
            else:
                row.json_type = "string"
            keys = _keys(fld)
            if keys is not None and len(keys) == 1 and keys[0] in (registry or {}):
                row.key = keys[0]
                row.declare(registry)
        if isinstance(value, dict) and "days_ago" in value:
            row.date_mode = "days_ago"
            row.days = str(value["days_ago"])
        elif isinstance(value, list):
            row.value = ", ".join(_plain(v) for v in value)
        elif value is not None:
            row.value = _plain(value)
        return row

    def activity_from(self, criterion: Mapping[str, Any]) -> None:
        """Fill an activity row's own inputs from a stored activity criterion."""
        spec = criterion.get("activity") if isinstance(criterion.get("activity"), dict) else {}
        self.measure = criterion["field"][len("activity."):]
        self.activity_type = str(spec.get("type") or "")
        window = spec.get("window")
        if not window:
            self.window = "all"
        elif "days" in window:
            self.window, self.window_days = "days", str(window["days"])
        else:
            self.window = "range"
            self.window_from, self.window_to = window.get("from") or "", window.get("to") or ""
        where = spec.get("where") or []
        if where and isinstance(where[0], dict):
            self.prop_key = str(where[0].get("field", ""))[len("properties."):]
            self.prop_op = str(where[0].get("operator") or ts.EQUALS)
            value = where[0].get("value")
            self.prop_value = ", ".join(_plain(v) for v in value) if isinstance(
                value, list) else "" if value is None else _plain(value)

    def activity_criterion(self, out: dict[str, Any]) -> dict[str, Any]:
        """An activity row's criterion (the value is set by the caller)."""
        if not self.activity_type.strip():
            raise RowProblem("name the activity type (e.g. purchase)", incomplete=True)
        spec: dict[str, Any] = {"type": self.activity_type.strip()}
        if self.window == "days":
            days = _number(self.window_days)
            if not self.window_days:
                raise RowProblem("enter the number of days of the window", incomplete=True)
            spec["window"] = {"days": days if isinstance(days, int) else self.window_days}
        elif self.window == "range":
            if not (self.window_from or self.window_to):
                raise RowProblem("choose the window's dates", incomplete=True)
            spec["window"] = {k: v for k, v in (("from", self.window_from),
                                                ("to", self.window_to)) if v}
        if self.prop_key.strip():
            spec["where"] = [self.property_filter()]
        out["field"] = f"activity.{self.measure}"
        out["activity"] = spec
        return out

    @property
    def prop_needs_value(self) -> bool:
        """Whether the property filter's operator takes a value."""
        return self.prop_op not in (ts.EXISTS, ts.NOT_EXISTS)

    def property_filter(self) -> dict[str, Any]:
        """An activity row's property filter: numbers and true/false typed as such, a list
        for in / not in."""
        out: dict[str, Any] = {"field": "properties." + self.prop_key.strip(),
                               "operator": self.prop_op}
        if not self.prop_needs_value:
            return out
        if not self.prop_value.strip():
            raise RowProblem("enter the property's value", incomplete=True)

        def typed(text: str) -> Any:
            number = _number(text)
            if number is not None:
                return number
            return {"true": True, "false": False}.get(text, text)
        if self.prop_op in (ts.IN, ts.NOT_IN):
            out["value"] = [typed(v) for v in split_list(self.prop_value)]
        elif self.prop_op in ts.ORDERING:
            number = _number(self.prop_value)
            out["value"] = number if number is not None else self.prop_value.strip()
        else:
            out["value"] = typed(self.prop_value.strip())
        return out

    def criterion(self) -> dict[str, Any]:
        """The criterion this row stands for; raises RowProblem when it cannot be built."""
        if self.error:
            raise RowProblem(self.error)
        for label, text, limit in (("Custom field key", self.key, KEY_MAX),
                                   ("Value", self.value, VALUE_MAX)):
            if len(text) > limit:
                raise RowProblem(f"{label} must be at most {limit:,} characters "
                                 f"({len(text):,} given).")
        if not self.field:
            raise RowProblem("choose a field", incomplete=True)
        kind = self.kind
        fld = self.field
        if kind == ts.ANY and self.declared is not None:
            fld = custom_field((self.key,))  # a declared key is one key, dots and all
        elif kind == ts.ANY:
            if not self.key:
                raise RowProblem("name the custom field (e.g. vip or address.city)",
                                 incomplete=True)
            fld = field_for_key(self.key)
            _check_path(fld)
        out: dict[str, Any] = {"field": fld, "operator": self.operator}
        if kind == ts.ACTIVITY:
            out = self.activity_criterion(out)
            kind = self.value_kind
        if self.ci and self.text_like:
            out["case_insensitive"] = True
        if not self.needs_value:
            return out
        if kind in (ts.DATE, ts.DATETIME) and self.date_mode == "days_ago":
            if not self.days:
                raise RowProblem("enter a number of days", incomplete=True)
            days = _number(self.days)
            out["value"] = {"days_ago": days if isinstance(days, int) else self.days}
            return out
        text = self.value.strip()
        if not text:
            raise RowProblem("enter a value", incomplete=True)
        if self.takes_list:
            out["value"] = [self._one(item, kind) for item in split_list(text)]
        else:
            out["value"] = self._one(text, kind)
        return out

    def _one(self, text: str, kind: str | None) -> Any:
        """One typed value from text; a value of the wrong type is passed on for the core to
        refuse with its own message."""
        if kind == ts.SEGMENT:
            number = _number(text.lstrip("#"))
            if not isinstance(number, int):
                raise RowProblem(f"segment ids are whole numbers, not {text!r}")
            return number
        if kind == ts.INTEGER:
            number = _number(text)
            return text if number is None else number
        if kind == ts.ANY:
            if self.json_type == "number" and self.operator not in (ts.CONTAINS,
                                                                    ts.NOT_CONTAINS) or (
                    self.operator in ts.ORDERING):
                number = _number(text)
                if number is None:
                    raise RowProblem(f"{text!r} is not a number (the custom field's type is "
                                     "number)")
                return number
            if self.json_type == "boolean":
                if text.lower() not in ("true", "false"):
                    raise RowProblem(f"{text!r} is not true or false")
                return text.lower() == "true"
            return text
        return text


def _keys(field: str) -> tuple[str, ...] | None:
    """The keys a custom-field path names, or None when it is not one."""
    try:
        return parse_path(field[len(CUSTOM_ROOT):])
    except PathError:
        return None


def field_choices(registry: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The builder's field list: the member fields, then each declared custom field by name
    (before "Custom field…", which names any other)."""
    declared = [(f"{DECLARED}{key}", f"{key} (custom field)") for key in (registry or {})]
    return [*FIELD_CHOICES[:-2], *declared, *FIELD_CHOICES[-2:]]


def key_text(field: str) -> str:
    """What the key box shows for a custom field: its keys joined by dots, or, when a key has a
    dot or a bracket of its own or is empty, the path's quoted steps (see targeting.paths)."""
    try:
        keys = parse_path(field[len(CUSTOM_ROOT):])
    except PathError:
        return field[len(ts.CUSTOM_PREFIX):]
    if all(k and "." not in k and "[" not in k for k in keys):
        return ".".join(keys)
    return path_steps(keys).removeprefix(".")


def field_for_key(text: str) -> str:
    """The criterion field for what was typed in the key box.

    Dots separate nested keys, and a key of other characters than letters, digits, '_' and '-'
    (``Customer Type``, ``attr/a``, ``ключ``) is quoted for the user; text with quoted steps
    (``["a.b"]``, ``address["Customer Type"]``) is taken as written.
    """
    if text.startswith("["):
        return CUSTOM_ROOT + text
    keys = text.split(".")
    if '["' in text or not all(keys):
        return ts.CUSTOM_PREFIX + text  # the core says what is wrong with it, if anything
    return custom_field(keys)


def _check_path(fld: str) -> None:
    """Refuse a custom field path as the core would (asked with an operator needing no value)."""
    try:
        parse_criterion({"field": fld, "operator": ts.EXISTS}, "include[0]")
    except SegmentDefinitionError as exc:
        raise RowProblem(short_message(str(exc))) from None


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


@dataclass
class Box:
    """A group of the builder: rows and boxes of which all, any or none must hold."""

    group: str
    index: int
    mode: str = "any"
    parent: str = ""
    depth: int = 1
    error: str | None = None
    unfinished: str | None = None

    is_group = True

    @property
    def id(self) -> str:
        """The box's DOM id and form prefix, e.g. include-4."""
        return f"{self.group}-{self.index}"

    def name(self, part: str) -> str:
        """The form field name of one of the box's inputs."""
        return f"{self.id}-{part}"

    @property
    def words(self) -> str:
        """What the box asks, e.g. 'any of'."""
        return MODES[self.mode]


Node = Row | Box


@dataclass
class Builder:
    """The builder's rows and groups, and the button that was pressed."""

    include: list[Row] = dataclasses.field(default_factory=list)
    exclude: list[Row] = dataclasses.field(default_factory=list)
    boxes: list[Box] = dataclasses.field(default_factory=list)
    action: str = "save"
    target: str = ""

    def rows(self, group: str) -> list[Row]:
        """The rows of a group (include or exclude), those inside boxes too."""
        return self.include if group == "include" else self.exclude

    def all_rows(self) -> list[Row]:
        """Every row, includes first."""
        return self.include + self.exclude

    def find(self, row_id: str) -> Row | None:
        """The row with this DOM id."""
        return next((r for r in self.all_rows() if r.id == row_id), None)

    def find_box(self, box_id: str) -> Box | None:
        """The box with this DOM id."""
        return next((b for b in self.boxes if b.id == box_id), None)

    def children(self, group: str, parent: str = "") -> list[Node]:
        """The rows and boxes directly in a box (`parent`, "" for the top), in order."""
        nodes: list[Node] = [r for r in self.rows(group) if r.parent == parent]
        nodes += [b for b in self.boxes if b.group == group and b.parent == parent]
        return sorted(nodes, key=lambda n: n.index)

    def _next_index(self) -> int:
        taken = [r.index for r in self.all_rows()] + [b.index for b in self.boxes]
        return max(taken, default=-1) + 1

    def add(self, group: str, parent: str = "") -> Row:
        """Append a blank row to a group, or to a box in it."""
        row = Row(group=group, index=self._next_index(), parent=parent)
        self.rows(group).append(row)
        return row

    def add_box(self, group: str, parent: str = "") -> Row:
        """Append a box (with one blank row in it) to a group or a box; returns the row.

        A new box asks the opposite of the one it sits in (any inside all, all inside any):
        that is why one nests; at the top, where include is all already, it asks any.
        """
        outer = self.find_box(parent) if parent else None
        mode = "all" if outer is not None and outer.mode == "any" else "any"
        box = Box(group=group, index=self._next_index(), mode=mode, parent=parent,
                  depth=outer.depth + 1 if outer is not None else 1)
        self.boxes.append(box)
        return self.add(group, box.id)

    def remove(self, row_id: str) -> None:
        """Drop a row, or a box with everything in it."""
        gone = {row_id}
        grew = True
        while grew:
            inside = {b.id for b in self.boxes if b.parent in gone} - gone
            grew = bool(inside)
            gone |= inside
        self.include = [r for r in self.include if r.id not in gone and r.parent not in gone]
        self.exclude = [r for r in self.exclude if r.id not in gone and r.parent not in gone]
        self.boxes = [b for b in self.boxes if b.id not in gone]

    def empty_boxes(self) -> list[Box]:
        """Boxes with no row anywhere inside them."""
        used = set()
        for row in self.all_rows():
            parent = row.parent
            while parent and parent not in used:
                used.add(parent)
                box = self.find_box(parent)
                parent = box.parent if box is not None else ""
        return [b for b in self.boxes if b.id not in used]

    def mark_unfinished(self) -> list[Row]:
        """Mark each row that cannot become a criterion yet (a new blank row included) with
        what it still needs; returns those rows, which a preview leaves out."""
        marked = []
        for row in self.all_rows():
            row.unfinished = None
            try:
                row.criterion()
            except RowProblem as exc:
                if exc.incomplete:
                    row.unfinished = str(exc)
                    marked.append(row)
        for box in self.boxes:
            box.unfinished = None
        for box in self.empty_boxes():
            box.unfinished = "the group is empty: add a criterion to it or remove it"
        return marked

    def position(self, row: Row) -> int:
        """The row's place in its group, counted from 1 as people count."""
        return next(i for i, r in enumerate(self.rows(row.group), 1) if r is row)

    def criteria(self, *, skip_incomplete: bool) -> tuple[dict[str, list[dict]], dict[str, str],
                                                          dict[str, Node]]:
        """(criteria by group, row and box errors by id, row or box by criterion path like
        include[2] or include[0].any[1])."""
        out: dict[str, list[dict]] = {}
        errors: dict[str, str] = {}
        paths: dict[str, Node] = {}
        for group in GROUPS:
            out[group] = self._items(group, "", group, skip_incomplete, errors, paths)
        return out, errors, paths

    def _items(self, group: str, parent: str, prefix: str, skip_incomplete: bool,
               errors: dict[str, str], paths: dict[str, Node]) -> list[dict]:
        items: list[dict] = []
        for node in self.children(group, parent):
            where = f"{prefix}[{len(items)}]"
            if isinstance(node, Box):
                inner = self._items(group, node.id, f"{where}.{node.mode}", skip_incomplete,
                                    errors, paths)
                if not inner:
                    if not skip_incomplete:
                        errors[node.id] = ("the group is empty: add a criterion to it or "
                                           "remove it")
                    continue
                paths[where] = node
                items.append({node.mode: inner})
                continue
            try:
                criterion = node.criterion()
            except RowProblem as exc:
                if exc.incomplete and (skip_incomplete or node.blank):
                    continue
                errors[node.id] = str(exc)
                continue
            paths[where] = node
            items.append(criterion)
        return items

    @classmethod
    def from_form(cls, form: MultiDict, registry: Mapping[str, Any] | None = None) -> Builder:
        """Rows, boxes and pressed button from posted form data (`registry`: the declared
        custom fields)."""
        builder = cls()
        found = sorted((m.group(1), int(m.group(2))) for name in form
                       if (m := _NAME_RE.match(name)))
        for group, index in found:
            builder.rows(group).append(Row.from_form(form, group, index, registry))
        boxes = sorted((m.group(1), int(m.group(2))) for name in form
                       if (m := _GROUP_RE.match(name)))
        for group, index in boxes:
            mode = (form.get(f"{group}-{index}-mode") or "").strip()
            builder.boxes.append(Box(group=group, index=index,
                                     mode=mode if mode in MODES else "any",
                                     parent=(form.get(f"{group}-{index}-parent") or "").strip()))
        builder._check_parents()
        for action in ("add_include", "add_exclude", "add_to", "add_group", "remove_row",
                       "pick_segment", "unpick_segment", "find_segments", "preview"):
            if action in form:
                builder.action, builder.target = action, form.get(action, "")
                break
        return builder

    def _check_parents(self) -> None:
        """Put at the top any row or box whose parent is not a box of its group, cut any loop
        of boxes (a hand-made form), and number each box's depth."""
        ids = {b.id: b for b in self.boxes}
        for node in [*self.all_rows(), *self.boxes]:
            box = ids.get(node.parent)
            if box is None or box.group != node.group or box is node:
                node.parent = ""
        for box in self.boxes:
            seen = {box.id}
            outer = ids.get(box.parent)
            while outer is not None:
                if outer.id in seen:
                    box.parent = ""
                    break
                seen.add(outer.id)
                outer = ids.get(outer.parent)
        for box in self.boxes:
            depth, outer = 1, ids.get(box.parent)
            while outer is not None:
                depth += 1
                outer = ids.get(outer.parent)
            box.depth = depth

    @classmethod
    def from_segment(cls, include: list[dict], exclude: list[dict],
                     registry: Mapping[str, Any] | None = None) -> Builder:
        """Rows and boxes showing a stored definition (`registry`: the declared fields)."""
        builder = cls()
        counter = [0]

        def load(items: list[Any], group: str, parent: str, depth: int) -> None:
            for item in items or []:
                index = counter[0]
                counter[0] += 1
                mode = next((m for m in MODES if isinstance(item, dict) and "field" not in item
                             and isinstance(item.get(m), list)), None)
                if mode is None:
                    builder.rows(group).append(
                        Row.from_criterion(item, group, index, parent, registry))
                    continue
                box = Box(group=group, index=index, mode=mode, parent=parent, depth=depth)
                builder.boxes.append(box)
                load(item[mode], group, box.id, depth + 1)

        load(include, "include", "", 1)
        load(exclude, "exclude", "", 1)
        return builder

    def apply(self) -> Row | None:
        """Carry out a builder button (add, remove, pick); returns the row it touched."""
        if self.action == "add_include":
            return self.add("include")
        if self.action == "add_exclude":
            return self.add("exclude")
        if self.action in ("add_to", "add_group"):
            if self.target in GROUPS:
                return self.add_box(self.target) if self.action == "add_group" else self.add(
                    self.target)
            box = self.find_box(self.target)
            if box is None:
                return None
            if self.action == "add_to":
                return self.add(box.group, box.id)
            if box.depth >= ts.MAX_GROUP_DEPTH:
                box.error = f"groups nest at most {ts.MAX_GROUP_DEPTH} deep"
                return None
            return self.add_box(box.group, box.id)
        if self.action == "remove_row":
            self.remove(self.target)
            return None
        if self.action in ("pick_segment", "unpick_segment", "find_segments"):
            row_id, _, sid = self.target.partition(":")
            row = self.find(row_id)
            if row is None:
                return None
            ids = split_list(row.value)
            if self.action == "pick_segment" and sid.isdigit() and sid not in ids:
                ids.append(sid)
                row.segment_query = ""
            elif self.action == "unpick_segment":
                ids = [i for i in ids if i != sid]
            row.value = ", ".join(ids)
            return row
        return None
