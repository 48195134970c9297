"""A dynamic definition's criteria generated as Python source, compiled once per shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from webapp.targeting import schema as s
from webapp.targeting.criteria import Criterion
from webapp.targeting.env import Env, Member
from webapp.targeting.values import jsonable

if TYPE_CHECKING:
    from webapp.targeting.compiler import CompiledCriterion, CompiledGroup, Test

_CACHE_LIMIT = 4096  # generated factories kept, one per definition shape

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


def _inline_test(i: int, cc: CompiledCriterion | CompiledGroup, consts: dict[str, Any]
                 ) -> tuple[list[str], str] | None:
    """Lines setting `v` to the member's value, and the expression of the criterion's test.

    None for a criterion that is not inlined, and for a group (it calls its own test).
    """
    c = getattr(cc, "criterion", None)
    if c is None:
        return None
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


def _generate(include: tuple[CompiledCriterion | CompiledGroup, ...],
              exclude: tuple[CompiledCriterion | CompiledGroup, ...]
              ) -> tuple[Test, Callable[[Env, Callable[..., bool]], Any],
                         Callable[[Member, Env], tuple[bool, list[dict[str, Any]]]]]:
    """A dynamic definition's criteria as three generated Python functions.

    `match(member, env)` tests every criterion in turn (include, then exclude), with the same
    answers, in the same order, as calling each criterion's test; `bind(env, slow)` makes a
    `compile_segment` matcher `matcher(member, memberships=None)` for a fixed `env` (`slow`
    answers with memberships); `explain(member, env)` returns whether the rules match and
    the include/exclude nodes, the same nodes as calling each criterion's explainer. The
    commonest criteria are inlined (see `_INLINE_HOLDS`), the others and every group (an item
    of include or exclude, see `CompiledGroup`) call their own test or explainer. Criterion
    values, labels and field names reach the code as arguments of a factory, never as source
    text, so the source depends only on the definition's shape and is compiled once per shape.
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

_PLAIN = frozenset({str, int, float, bool, type(None)})
