"""Criteria compiled to Python tests and explainers, and definitions made of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from webapp.targeting import schema as s
from webapp.targeting.codegen import _PLAIN, _generate
from webapp.targeting.criteria import (
    GROUP_WORDS,
    Criterion,
    Definition,
    Group,
    criterion_label,
    describe_definition,
    group_label,
    parse_definition,
)
from webapp.targeting.env import Env, Member, _threshold
from webapp.targeting.errors import SegmentDefinitionError
from webapp.targeting.gaps import _FLIP, make_gap
from webapp.targeting.operators import REGISTRY
from webapp.targeting.values import (
    age_on,
    fold,
    jsonable,
    member_date,
    member_datetime,
)

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
            "the member's memberships", c.where)
    return env.in_segment

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
    if c.kind == s.SEGMENT:
        ids = tuple(value)

        def in_any(v: Any, env: Env) -> bool:
            check = _segment_check(env, c)
            return any(check(i) for i in ids)
        return in_any
    if c.kind in (s.DATE, s.DATETIME) and (op == s.EQUALS or op in s.ORDERING):
        thr = _threshold(c)
        cls = date if c.kind == s.DATE else datetime
        if op == s.EQUALS:
            return lambda v, env: v.__class__ is cls and v == thr(env)
        cmp = REGISTRY[op].compare
        assert cmp is not None
        return lambda v, env: v.__class__ is cls and cmp(v, thr(env))
    hook = REGISTRY[op].python
    assert hook is not None, f"{op} is negative: compile its positive operator"
    return hook(c, value, fold_fn)


def _lower_all(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [_lower_all(v) for v in value]
    return value

def compile_criterion(c: Criterion, segment_names: dict[Any, str] | None = None
                      ) -> CompiledCriterion:
    """Turn a validated criterion into a fast test `test(member, env) -> bool`."""
    if c.kind == s.ACTIVITY:
        from webapp.targeting.behaviour import compile_activity
        return compile_activity(c)
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

# --- groups --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledGroup:
    """A group (SPEC §8) with its test and explainers, made of its compiled items.

    Inside a group every child node *passes* when its own condition holds; the group node's
    `passed` is whether the group holds (in an exclude, whether it does not), its `expected` is
    the group's mode and its `actual` the numbers (from 1) of the branches that hold.
    """

    group: Group
    items: tuple[CompiledCriterion | CompiledGroup, ...]
    test: Test
    label: str
    exclude_label: str
    explain_include: Callable[[Member, Env], dict[str, Any]]
    explain_exclude: Callable[[Member, Env], dict[str, Any]]


def _all(tests: tuple[Test, ...]) -> Test:
    def holds_all(m: Member, env: Env) -> bool:
        for t in tests:
            if not t(m, env):
                return False
        return True
    return holds_all


def _any(tests: tuple[Test, ...]) -> Test:
    def holds_any(m: Member, env: Env) -> bool:
        for t in tests:
            if t(m, env):
                return True
        return False
    return holds_any


def _none(tests: tuple[Test, ...]) -> Test:
    def holds_none(m: Member, env: Env) -> bool:
        for t in tests:
            if t(m, env):
                return False
        return True
    return holds_none


_GROUP_TESTS = {"all": _all, "any": _any, "none": _none}


def _branches(held: list[int], total: int) -> str:
    """Which branches hold, in words: 'branch 2 of 3 holds', 'branches 1 and 3 of 3 hold'."""
    if not held:
        return "no branch holds" if total > 1 else "its branch does not hold"
    if len(held) == total and total > 1:
        return f"all {total} branches hold"
    if len(held) == 1:
        return f"branch {held[0]} of {total} holds" if total > 1 else "its branch holds"
    shown = [str(n) for n in held]
    return f"branches {', '.join(shown[:-1])} and {shown[-1]} of {total} hold"


def group_holds(mode: str, passed: list[bool]) -> bool:
    """Whether a group holds given whether each of its items holds (SPEC §8)."""
    if mode == "all":
        return all(passed)
    if mode == "any":
        return any(passed)
    return not any(passed)


def compile_group(g: Group, segment_names: dict[Any, str] | None = None) -> CompiledGroup:
    """Turn a validated group into its test and explainers."""
    items = tuple(compile_item(i, segment_names) for i in g.items)
    test = _GROUP_TESTS[g.mode](tuple(i.test for i in items))
    explainers = tuple(i.explain_include for i in items)
    label = group_label(g, segment_names)
    words = GROUP_WORDS[g.mode]
    mode = g.mode
    total = len(items)

    def make(excluding: bool) -> Callable[[Member, Env], dict[str, Any]]:
        prefix = "excluded when " if excluding else ""

        def explain_group(m: Member, env: Env) -> dict[str, Any]:
            children = [e(m, env) for e in explainers]
            held = [n for n, child in enumerate(children, 1) if child["passed"]]
            holds = group_holds(mode, [child["passed"] for child in children])
            return {"kind": "group", "label": f"{prefix}{words}: {_branches(held, total)}",
                    "passed": holds is not excluding, "actual": held, "expected": mode,
                    "gap": None, "children": children}
        return explain_group
    return CompiledGroup(group=g, items=items, test=test, label=label,
                         exclude_label=f"excluded when {label}", explain_include=make(False),
                         explain_exclude=make(True))


def compile_item(item: Criterion | Group, segment_names: dict[Any, str] | None = None
                 ) -> CompiledCriterion | CompiledGroup:
    """Compile a criterion or a group."""
    if isinstance(item, Group):
        return compile_group(item, segment_names)
    return compile_criterion(item, segment_names)


# --- definitions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledDefinition:
    """A validated definition with compiled criteria."""

    definition: Definition
    include: tuple[CompiledCriterion | CompiledGroup, ...]
    exclude: tuple[CompiledCriterion | CompiledGroup, ...]
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
    inc = tuple(compile_item(c, segment_names) for c in d.include)
    exc = tuple(compile_item(c, segment_names) for c in d.exclude)
    description = describe_definition(d, segment_names)
    segment_criteria = any(c.kind == s.SEGMENT for c in d.criteria())
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


def _explain_each(include: tuple[CompiledCriterion | CompiledGroup, ...],
                  exclude: tuple[CompiledCriterion | CompiledGroup, ...],
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
