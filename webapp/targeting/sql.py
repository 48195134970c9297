"""Criteria compiled to SQLAlchemy Core expressions: the same answers as the Python evaluator.

`compile_criteria` turns a definition's include/exclude criteria into one boolean expression
over the `members` table, so counting and listing a segment runs in the database. SQLite uses
``json_type``/``json_extract``/``json_each``; PostgreSQL uses jsonb (``->``, ``jsonb_typeof``,
``jsonb_array_elements``). The rules of SPEC §3 hold here exactly as in Python:

* custom fields (and `badges`) compare by JSON type: a string never orders against a number,
  ``true`` never equals ``1``, ``12`` equals ``12.0``; JSON null is missing;
* a dotted path walks objects only (SQLite ``$."a"."b"``, PostgreSQL ``-> 'a' -> 'b'``, which
  never index into arrays);
* every leaf is two-valued (never SQL NULL), and negations go through ``coalesce(…, false)``,
  so a missing field makes the negative operators true;
* a group (SPEC §8) is the AND (`all`), OR (`any`) or NOT-OR (`none`) of its items; `all` of
  nothing is true, `any` of nothing false, as in Python;
* case-insensitive comparison folds ASCII letters (SQLite ``lower``, PostgreSQL ``translate``),
  as the Python evaluator does; ``email`` is stored lower-cased and compared lower-cased.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from webapp.targeting import schema as s
from webapp.targeting.criteria import Criterion, Definition, Group, parse_definition
from webapp.targeting.env import Env, make_env
from webapp.targeting.errors import SegmentDefinitionError
from webapp.targeting.paths import is_plain_key
from webapp.targeting.values import age_cutoff, fold, is_number

Bool = ColumnElement[bool]
_UPPER = string.ascii_uppercase
_LOWER = string.ascii_lowercase


def _false() -> Bool:
    return sa.false()


def _true() -> Bool:
    return sa.true()


def _not(expr: Bool) -> Bool:
    return sa.not_(sa.func.coalesce(expr, sa.false(), type_=sa.Boolean))


def _or(parts: list[Bool]) -> Bool:
    return sa.or_(*parts) if parts else _false()


def _and(parts: list[Bool]) -> Bool:
    return sa.and_(*parts) if parts else _true()


# --- JSON nodes, one class per dialect ---------------------------------------------------------


class _SqliteNode:
    """A JSON value inside a SQLite JSON column: json_type/json_extract at a path."""

    names = {"string": ("text",), "number": ("integer", "real"), "true": ("true",),
             "false": ("false",), "array": ("array",), "object": ("object",), "null": ("null",)}

    def __init__(self, doc: Any, path: str, type_expr: Any = None, value_expr: Any = None):
        self.doc = doc
        self.path = path
        self.type_expr = type_expr if type_expr is not None else sa.func.json_type(doc, path)
        self.value_expr = (value_expr if value_expr is not None
                           else sa.func.json_extract(doc, path))

    def is_(self, *kinds: str) -> Bool:
        names = [n for k in kinds for n in self.names[k]]
        return sa.func.coalesce(self.type_expr, "").in_(names)

    def present(self) -> Bool:
        return sa.and_(self.type_expr.is_not(None), self.type_expr != "null")

    def text(self) -> Any:
        return self.value_expr

    def fold(self, expr: Any) -> Any:
        return sa.func.lower(expr)

    def substring(self, haystack: Any, needle: str) -> Bool:
        return sa.func.instr(haystack, needle) > 0

    def num_cmp(self, op: str, value: float | int) -> Bool:
        return sa.and_(self.is_("number"), _cmp(self.value_expr, op, value))

    def nums_in(self, values: list[Any]) -> Bool:
        return sa.and_(self.is_("number"), self.value_expr.in_(values))

    def child(self, key: str) -> _SqliteNode:
        if is_plain_key(key):
            return _SqliteNode(self.doc, f'{self.path}."{key}"')
        # A path label cannot name every key (SQLite compares it with the key as escaped in the
        # stored text, and ends it at the first quote), so other keys are looked up with
        # json_each, which compares the key itself. A list's elements have whole-number keys,
        # which never equal a text key, so a key never indexes into a list.
        each = sa.func.json_each(self.doc, self.path).table_valued("key", "type", "value")

        def pick(column: Any) -> Any:
            return (sa.select(column).where(each.c.key == key).limit(1)
                    .correlate_except(each).scalar_subquery())
        type_expr, value_expr = pick(each.c.type), pick(each.c.value)
        # An object or array comes back as its JSON text: the document the next steps read.
        doc = sa.case((type_expr.in_(("object", "array")), value_expr))
        return _SqliteNode(doc, "$", type_expr, value_expr)

    def index(self, i: int) -> _SqliteNode:
        return _SqliteNode(self.doc, f"{self.path}[{i}]")

    def length_is(self, n: int) -> Bool:
        return sa.and_(self.is_("array"), sa.func.json_array_length(self.doc, self.path) == n)

    def keycount_is(self, n: int) -> Bool:
        each = sa.func.json_each(self.doc, self.path).table_valued("key")
        count = sa.select(sa.func.count()).select_from(each).scalar_subquery()
        return sa.and_(self.is_("object"), count == n)

    def any_element(self, pred: Callable[[Any], Bool]) -> Bool:
        each = sa.func.json_each(self.doc, self.path).table_valued("type", "value")
        elem = _SqliteNode(None, "", each.c.type, each.c.value)
        return sa.and_(self.is_("array"),
                       sa.exists(sa.select(sa.literal(1)).select_from(each).where(pred(elem))))

    def json_equals(self, value: Any) -> Bool | None:
        return None

    def array_has(self, value: Any) -> Bool | None:
        return None


class _PgNode:
    """A jsonb value reached with `->` (which never indexes an array with a text key)."""

    def __init__(self, expr: Any):
        self.expr = expr
        self.type_expr = sa.func.jsonb_typeof(expr)

    def is_(self, *kinds: str) -> Bool:
        parts = []
        names = [k for k in kinds if k not in ("true", "false")]
        if names:
            parts.append(sa.func.coalesce(self.type_expr, "").in_(names))
        for k in ("true", "false"):
            if k in kinds:
                parts.append(sa.func.coalesce(self.expr == sa.cast(sa.literal(k), JSONB),
                                              sa.false(), type_=sa.Boolean))
        return parts[0] if len(parts) == 1 else sa.or_(*parts)

    def present(self) -> Bool:
        return sa.and_(self.expr.is_not(None), self.type_expr != "null")

    def text(self) -> Any:
        return self.expr.op("#>>")(sa.literal_column("'{}'::text[]"))

    def fold(self, expr: Any) -> Any:
        return sa.func.translate(expr, _UPPER, _LOWER)

    def substring(self, haystack: Any, needle: str) -> Bool:
        return sa.func.strpos(haystack, needle) > 0

    def num_cmp(self, op: str, value: float | int) -> Bool:
        return sa.and_(self.is_("number"), _cmp(self.expr, op, _jsonb(value)))

    def nums_in(self, values: list[Any]) -> Bool:
        return sa.and_(self.is_("number"), self.expr.in_([_jsonb(v) for v in values]))

    def child(self, key: str) -> _PgNode:
        return _PgNode(self.expr.op("->")(sa.literal(key, sa.Text)))

    def index(self, i: int) -> _PgNode:
        return _PgNode(self.expr.op("->")(sa.literal(i, sa.Integer)))

    def length_is(self, n: int) -> Bool:
        return sa.case((self.is_("array"), sa.func.jsonb_array_length(self.expr) == n),
                       else_=sa.false())

    def keycount_is(self, n: int) -> Bool:
        keys = sa.func.jsonb_object_keys(self.expr).table_valued("jsonb_object_keys")
        count = sa.select(sa.func.count()).select_from(keys).scalar_subquery()
        return sa.case((self.is_("object"), count == n), else_=sa.false())

    def any_element(self, pred: Callable[[Any], Bool]) -> Bool:
        elems = sa.func.jsonb_array_elements(self.expr).table_valued(sa.column("value", JSONB))
        elem = _PgNode(elems.c.value)
        found = sa.exists(sa.select(sa.literal(1)).select_from(elems).where(pred(elem)))
        return sa.case((self.is_("array"), found), else_=sa.false())

    def json_equals(self, value: Any) -> Bool | None:
        return sa.func.coalesce(self.expr == _jsonb(value), sa.false(), type_=sa.Boolean)

    def array_has(self, value: Any) -> Bool | None:
        # jsonb containment of a one-element array: some top-level element equals the scalar
        # by JSON type (numbers numerically), never a nested one; GIN-indexable.
        return sa.and_(self.is_("array"), sa.func.coalesce(
            self.expr.op("@>")(_jsonb([value])), sa.false(), type_=sa.Boolean))


def _jsonb(value: Any) -> Any:
    return sa.cast(sa.literal(json.dumps(value), sa.Text), JSONB)


def _cmp(left: Any, op: str, right: Any) -> Bool:
    if op == s.GT:
        return left > right
    if op == s.GTE:
        return left >= right
    if op == s.LT:
        return left < right
    if op == s.LTE:
        return left <= right
    return left == right


Node = _SqliteNode | _PgNode


def _has_strings(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return any(_has_strings(v) for v in value)
    if isinstance(value, dict):
        return any(_has_strings(v) for v in value.values())
    return False


def _json_eq(n: Node, value: Any, ci: bool) -> Bool:
    """`n` equals `value` by JSON type, deeply (lists by order, objects by keys)."""
    if not (ci and _has_strings(value)):
        fast = n.json_equals(value)
        if fast is not None:
            return fast
    if isinstance(value, str):
        if ci:
            return sa.and_(n.is_("string"), n.fold(n.text()) == fold(value))
        return sa.and_(n.is_("string"), n.text() == value)
    if isinstance(value, bool):
        return n.is_("true" if value else "false")
    if is_number(value):
        return n.num_cmp(s.EQUALS, value)
    if isinstance(value, list):
        return sa.and_(n.length_is(len(value)),
                       *[_json_eq(n.index(i), v, ci) for i, v in enumerate(value)])
    if isinstance(value, dict):
        return sa.and_(n.keycount_is(len(value)),
                       *[_json_eq(n.child(k), v, ci) for k, v in value.items()])
    return _false()


def _scalar_in(n: Node, options: list[Any], ci: bool) -> Bool:
    """`n` (a scalar) is one of `options`, by JSON type."""
    strs = [o for o in options if isinstance(o, str)]
    nums = [o for o in options if is_number(o)]
    bools = {o for o in options if isinstance(o, bool)}
    parts: list[Bool] = []
    if strs:
        if ci:
            folded = sorted({fold(x) for x in strs})
            parts.append(sa.and_(n.is_("string"), n.fold(n.text()).in_(folded)))
        else:
            parts.append(sa.and_(n.is_("string"), n.text().in_(sorted(set(strs)))))
    if nums:
        parts.append(n.nums_in(nums))
    for b in sorted(bools):
        parts.append(n.is_("true" if b else "false"))
    return _or(parts)


def _array_has_any(n: Node, values: list[Any]) -> Bool | None:
    """Some element of the array `n` is one of `values` (None: no fast form here)."""
    parts = [n.array_has(v) for v in values]
    if any(p is None for p in parts):
        return None
    return sa.or_(*parts)


# --- typed columns --------------------------------------------------------------------------


def _guard(col: Any, expr: Bool) -> Bool:
    return sa.and_(col.is_not(None), expr) if getattr(col, "nullable", True) else expr


def _int_positive(col: Any, op: str, value: Any) -> Bool:
    if op == s.EQUALS:
        if value != math.floor(value):
            return _false()
        return _guard(col, col == int(value))
    if op == s.IN:
        ints = sorted({int(v) for v in value if v == math.floor(v)})
        return _guard(col, col.in_(ints)) if ints else _false()
    bound = {s.GT: math.floor(value), s.GTE: math.ceil(value), s.LT: math.ceil(value),
             s.LTE: math.floor(value)}[op]
    return _guard(col, _cmp(col, op, int(bound)))


def _age_at_least(birthday: Any, years: int, today: date) -> Bool:
    cutoff = age_cutoff(years, today)
    if cutoff is True:
        return birthday.is_not(None)
    if cutoff is False:
        return _false()
    return sa.and_(birthday.is_not(None), birthday <= cutoff)


def _age_below(birthday: Any, years: int, today: date) -> Bool:
    cutoff = age_cutoff(years, today)
    if cutoff is True:
        return _false()
    if cutoff is False:
        return birthday.is_not(None)
    return sa.and_(birthday.is_not(None), birthday > cutoff)


def _age_positive(birthday: Any, op: str, value: Any, today: date) -> Bool:
    if op == s.GTE:
        return _age_at_least(birthday, math.ceil(value), today)
    if op == s.GT:
        return _age_at_least(birthday, math.floor(value) + 1, today)
    if op == s.LT:
        return _age_below(birthday, math.ceil(value), today)
    if op == s.LTE:
        return _age_below(birthday, math.floor(value) + 1, today)
    values = [value] if op == s.EQUALS else value
    ints = sorted({int(v) for v in values if v == math.floor(v)})
    return _or([sa.and_(_age_at_least(birthday, n, today), _age_below(birthday, n + 1, today))
                for n in ints])


class _Compiler:
    def __init__(self, members: Any, dialect: str, env: Env,
                 memberships: sa.Table | None, activities: sa.Table | None = None,
                 per_member: bool = False) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"dialect is sqlite or postgresql, not {dialect!r}")
        self.members = members
        self.dialect = dialect
        self.env = env
        self.memberships = memberships
        self.activities = activities
        self.per_member = per_member

    def json_root(self, column: Any) -> Node:
        if self.dialect == "sqlite":
            return _SqliteNode(column, "$")
        return _PgNode(sa.cast(column, JSONB) if not isinstance(column.type, JSONB)
                       and self._needs_cast(column) else column)

    def _needs_cast(self, column: Any) -> bool:
        impl = column.type
        variant = getattr(impl, "_variant_mapping", {}).get("postgresql")
        return not isinstance(variant, JSONB)

    def fold(self, expr: Any) -> Any:
        if self.dialect == "sqlite":
            return sa.func.lower(expr)
        return sa.func.translate(expr, _UPPER, _LOWER)

    def substring(self, haystack: Any, needle: str) -> Bool:
        if self.dialect == "sqlite":
            return sa.func.instr(haystack, needle) > 0
        return sa.func.strpos(haystack, needle) > 0

    def threshold(self, c: Criterion) -> date | datetime:
        """A date criterion's value at this compiler's clock and zone."""
        dv = c.date_value
        assert dv is not None
        return (dv.as_date(self.env.today) if c.kind == s.DATE
                else dv.as_utc(self.env.now, self.env.tz))

    def text(self, c: Criterion, col: Any) -> tuple[Any, Callable[[str], str]]:
        """A text column as compared (folded when case-insensitive) and the value's folding."""
        email = c.field == "email"
        ci = c.case_insensitive and not email
        target = self.fold(col) if ci else col

        def norm(v: str) -> str:
            return v.lower() if email else fold(v) if ci else v
        return target, norm

    def positive(self, c: Criterion) -> Bool:
        cols = self.members.c
        op, value = c.operator, c.value
        if c.kind == s.SEGMENT:
            if self.memberships is None:
                raise SegmentDefinitionError(
                    f"{c.where} (segment {op} {value}): segment criteria need the "
                    "segment_memberships table", c.where)
            if not value:
                return _false()
            sm = self.memberships.c
            sub = sa.select(sm.member_id).where(sm.segment_id.in_(sorted(set(value))))
            return cols.id.in_(sub)
        node: Node | None = None
        col: Any = None
        if c.kind == s.ANY:
            node = self.json_root(cols.custom_fields)
            for key in c.path:
                node = node.child(key)
        elif c.kind == s.LIST:
            node = self.json_root(cols[c.field])
        else:
            col = cols.birthday if c.field == "age" else cols[c.field]
        return SQL_OPERATORS[op](self, c, node, col)

    def criterion(self, c: Criterion) -> Bool:
        if c.kind == s.ACTIVITY:
            return self.activity(c)
        if c.operator in s.NEGATIVE:
            positive = Criterion(field=c.field, operator=s.NEGATIVE[c.operator], value=c.value,
                                 case_insensitive=c.case_insensitive, kind=c.kind, path=c.path,
                                 where=c.where, date_value=c.date_value)
            return _not(self.positive(positive))
        return self.positive(c)

    def activity(self, c: Criterion) -> Bool:
        """An activity criterion (webapp.targeting.behaviour) as a test of `members.id`.

        The member's activities of the type, passing the property filters, inside the window
        and not after now, grouped by member: with P the comparison on the group's measure,
        ``id IN (… HAVING P)`` when P fails for a member with no activities (count 0, sum 0,
        the others missing), else ``id NOT IN (… HAVING NOT P)``. With `per_member` (a few
        members), P over each member's own activities in a correlated subquery instead."""
        from webapp.targeting.behaviour import holds, measure, threshold

        if self.activities is None:
            raise SegmentDefinitionError(
                f"{c.where} ({c.field}): activity criteria need the activities table", c.where)
        a = self.activities.c
        spec = c.activity
        env = self.env
        start, end = spec.window.bounds(env.now, env.today, env.tz)
        conds: list[Bool] = [a.type == spec.type, a.occurred_at <= env.now]
        if start is not None:
            conds.append(a.occurred_at >= start)
        if end is not None:
            conds.append(a.occurred_at < end)
        if spec.filters:
            props = _Compiler(_Props(a.properties), self.dialect, env, None)
            conds.extend(props.criterion(f) for f in spec.filters)
        agg = {"count": sa.func.count(), "sum": sa.func.coalesce(sa.func.sum(a.amount_e4), 0),
               "min": sa.func.min(a.amount_e4), "max": sa.func.max(a.amount_e4),
               "first": sa.func.min(a.occurred_at), "last": sa.func.max(a.occurred_at)
               }[spec.measure]
        want = threshold(c, env)
        if spec.measure == "sum" and self.dialect == "sqlite":
            test = _sqlite_sum_cmp(a.amount_e4, c.operator, want)
        elif c.operator == s.NOT_EQUALS:
            test = sa.not_(agg == want)
        else:
            test = _cmp(agg, c.operator, want)
        empty = measure((), spec, (), env)
        if self.per_member:
            # A few members (those whose activities just changed): each member's own
            # activities through the (member_id, type, occurred_at) index. The aggregate of no
            # rows is NULL where Python's measure is missing, which then decides as in Python.
            own = sa.select(test).where(a.member_id == self.members.c.id, *conds)
            return sa.func.coalesce(own.scalar_subquery(), holds(c, empty, env),
                                    type_=sa.Boolean) == sa.true()
        grouped = sa.select(a.member_id).where(*conds).group_by(a.member_id)
        if not holds(c, empty, env):
            return self.members.c.id.in_(grouped.having(test))
        return self.members.c.id.not_in(grouped.having(sa.not_(test)))

    def item(self, item: Criterion | Group) -> Bool:
        """A criterion or a group as SQL (a group combines its items' two-valued tests)."""
        if not isinstance(item, Group):
            return self.criterion(item)
        parts = [self.item(i) for i in item.items]
        if item.mode == "all":
            return _and(parts)
        if item.mode == "any":
            return _or(parts)
        return _not(_or(parts))


_LOW_BITS = 0xFFFFFFFF


def _sqlite_sum_cmp(col: Any, op: str, want: int) -> Bool:
    """``sum(col) op want`` (a missing sum is 0), exact past 64 bits on SQLite, whose integer
    sum raises "integer overflow" (ten amounts near the largest valid one pass 2**63).

    Each value is split into its high part (``col >> 32``, an arithmetic shift) and its low
    32 bits (``col & 0xFFFFFFFF``); both sums fit 64 bits for billions of rows. The
    difference with `want` is normalised to a high part and a low part in [0, 2**32): its
    sign is the high part's, or the low part's when the high part is 0."""
    high = (sa.func.coalesce(sa.func.sum(col.op(">>")(32)), 0) - (want >> 32)).self_group()
    low = (sa.func.coalesce(sa.func.sum(col.op("&")(_LOW_BITS)), 0)
           - (want & _LOW_BITS)).self_group()
    high = (high + low.op(">>")(32).self_group()).self_group()
    low = low.op("&")(_LOW_BITS).self_group()
    if op == s.GTE:
        return high >= 0
    if op == s.LT:
        return high < 0
    if op == s.GT:
        return sa.or_(high > 0, sa.and_(high == 0, low > 0))
    if op == s.LTE:
        return sa.or_(high < 0, sa.and_(high == 0, low == 0))
    if op == s.EQUALS:
        return sa.and_(high == 0, low == 0)
    if op == s.NOT_EQUALS:
        return sa.or_(high != 0, low != 0)
    raise ValueError(f"no exact SQLite sum comparison for {op!r}")


class _Props:
    """An activity's properties seen as a member's custom fields (for the property filters)."""

    def __init__(self, column: Any) -> None:
        self.c = _PropColumns(column)


class _PropColumns:
    def __init__(self, column: Any) -> None:
        self.custom_fields = column


# --- the SQL hook of each positive operator (see webapp.targeting.operators) -----------------
#
# A hook gets the compiler, the criterion and either the JSON node of a badge list or custom
# field, or the typed column (`birthday` for `age`), and returns the positive test as SQL.

SqlHook = Callable[[_Compiler, Criterion, "Node | None", Any], Bool]


def _sql_exists(comp: _Compiler, c: Criterion, n: Node | None, col: Any) -> Bool:
    return n.present() if n is not None else col.is_not(None)


def _sql_equals(comp: _Compiler, c: Criterion, n: Node | None, col: Any) -> Bool:
    if n is not None:
        return _json_eq(n, c.value, c.case_insensitive)
    if c.field == "age":
        return _age_positive(col, c.operator, c.value, comp.env.today)
    if c.kind in (s.DATE, s.DATETIME):
        return _guard(col, _cmp(col, c.operator, comp.threshold(c)))
    if c.kind == s.INTEGER:
        return _int_positive(col, c.operator, c.value)
    target, norm = comp.text(c, col)
    return _guard(col, target == norm(c.value))


def _sql_in(comp: _Compiler, c: Criterion, n: Node | None, col: Any) -> Bool:
    value, ci = c.value, c.case_insensitive
    if n is not None:
        if not value:
            return _false()
        fast = None if ci else _array_has_any(n, value)
        return sa.or_(_scalar_in(n, value, ci), fast if fast is not None else
                      n.any_element(lambda e: _scalar_in(e, value, ci)))
    if c.field == "age":
        return _age_positive(col, c.operator, value, comp.env.today)
    if c.kind == s.INTEGER:
        return _int_positive(col, c.operator, value)
    target, norm = comp.text(c, col)
    vals = sorted({norm(v) for v in value})
    return _guard(col, target.in_(vals)) if vals else _false()


def _sql_contains(comp: _Compiler, c: Criterion, n: Node | None, col: Any) -> Bool:
    value, ci = c.value, c.case_insensitive
    if n is None:
        target, norm = comp.text(c, col)
        return _guard(col, comp.substring(target, norm(value)))
    fast = None if ci and isinstance(value, str) else n.array_has(value)
    in_list = fast if fast is not None else n.any_element(
        lambda e: _json_eq(e, value, ci) if not isinstance(value, str)
        else _scalar_in(e, [value], ci))
    if isinstance(value, str):
        hay = n.fold(n.text()) if ci else n.text()
        needle = fold(value) if ci else value
        return sa.or_(sa.and_(n.is_("string"), n.substring(hay, needle)), in_list)
    return in_list


def _sql_ordering(comp: _Compiler, c: Criterion, n: Node | None, col: Any) -> Bool:
    if n is not None:
        return n.num_cmp(c.operator, c.value)
    if c.field == "age":
        return _age_positive(col, c.operator, c.value, comp.env.today)
    if c.kind in (s.DATE, s.DATETIME):
        return _guard(col, _cmp(col, c.operator, comp.threshold(c)))
    return _int_positive(col, c.operator, c.value)


#: The SQL hook of every positive operator, by name.
SQL_OPERATORS: dict[str, SqlHook] = {
    s.EXISTS: _sql_exists, s.EQUALS: _sql_equals, s.IN: _sql_in, s.CONTAINS: _sql_contains,
    s.GTE: _sql_ordering, s.GT: _sql_ordering, s.LTE: _sql_ordering, s.LT: _sql_ordering,
}


def compile_criteria(definition: Any, members: sa.Table, *, dialect: str,
                     now: datetime | None = None, tz: str | tzinfo = "UTC",
                     memberships: sa.Table | None = None,
                     activities: sa.Table | None = None, per_member: bool = False) -> Bool:
    """The rule part of a definition (includes and no excludes) as a boolean SQL expression
    (`memberships` answers `segment` criteria, `activities` the activity criteria, read per
    member with `per_member`: for a few members rather than everyone)."""
    d = definition if isinstance(definition, Definition) else parse_definition(definition)
    if d.kind == "static":
        return _false()
    comp = _Compiler(members, dialect, make_env(now, tz), memberships, activities, per_member)
    parts = [comp.item(c) for c in d.include]
    if d.exclude:
        parts.append(_not(_or([comp.item(c) for c in d.exclude])))
    return _and(parts)


def compile_criterion(criterion: Criterion, members: sa.Table, *, dialect: str,
                      now: datetime | None = None, tz: str | tzinfo = "UTC",
                      memberships: sa.Table | None = None,
                      activities: sa.Table | None = None) -> Bool:
    """One validated criterion as a boolean SQL expression."""
    return _Compiler(members, dialect, make_env(now, tz), memberships, activities
                     ).criterion(criterion)


_DATE_SQLITE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_DATE_PG = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def _calendar_date(text: Any, dialect: str) -> Bool:
    """`text` is a calendar date written YYYY-MM-DD (year 0001 or later), as Python's
    date.fromisoformat reads it."""
    year = sa.func.substr(text, 1, 4)
    if dialect == "sqlite":  # date(x, '+0 days') moves 2026-02-30 on to 2026-03-02
        return sa.and_(text.op("GLOB")(_DATE_SQLITE), year != "0000",
                       sa.func.date(text, "+0 days") == text)
    number = sa.Integer()
    y, m, d = (sa.cast(sa.func.substr(text, start, size), number)
               for start, size in ((1, 4), (6, 2), (9, 2)))
    last_day = sa.extract("day", sa.func.make_date(y, m, 1) + sa.text("interval '1 month'")
                          - sa.text("interval '1 day'"))
    # CASE: the day is compared only once the text has the shape (make_date would refuse).
    return sa.case((sa.and_(text.op("~")(_DATE_PG), year != "0000"), d <= last_day),
                   else_=sa.false())


def declared_checks(members: sa.Table, key: str, kind: str, allowed: list[Any] | None, *,
                    dialect: str) -> tuple[Bool, Bool]:
    """(has a value, the value fits) for custom field `key` declared as `kind` with these
    allowed values: SQL twins of webapp.targeting.declared (a JSON null is no value)."""
    node = _Compiler(members, dialect, make_env(None, "UTC"), None).json_root(
        members.c.custom_fields).child(key)
    if kind == "string":
        fits = node.is_("string")
        if allowed:
            fits = sa.and_(fits, node.text().in_(allowed))
    elif kind == "number":
        fits = node.nums_in(list(allowed)) if allowed else node.is_("number")
    elif kind == "boolean":
        fits = node.is_("true", "false")
    elif kind == "date":
        fits = sa.and_(node.is_("string"), _calendar_date(node.text(), dialect))
    elif kind == "list":
        def wrong(e: Any) -> Bool:
            ok = e.is_("string")
            return _not(sa.and_(ok, e.text().in_(allowed)) if allowed else ok)
        fits = sa.and_(node.is_("array"), _not(node.any_element(wrong)))
    else:
        raise ValueError(f"unknown declared type {kind!r}")
    return node.present(), fits
