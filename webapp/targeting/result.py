"""Effective membership (overrides, lists, rules) and its explanation tree (SPEC §3).

Explanation nodes all have the same keys:

``kind``
    what was checked: ``segment``, ``override``, ``list``, ``include``, ``exclude``,
    ``group`` (an any/all/none group, SPEC §8), ``criterion`` (and, from
    :mod:`webapp.targeting.visibility`, ``offer``, ``reward``, ``status``, ``window``,
    ``audience``, ``required_segments``, ``points``);
``label``
    human words for the check ("points at least 1,000", "has badge banned");
``passed``
    whether the member passed this check. In an ``exclude`` group a criterion *passes* when it
    does **not** hold (holding it is what excludes the member). Inside a ``group`` node every
    child passes when it holds, and the group passes when it holds by its mode (in exclude:
    when it does not hold);
``actual``
    the member's value (JSON; dates as ISO strings; None when missing); for a ``group``, the
    numbers (from 1) of the branches that hold;
``expected``
    the criterion's value as written (None where there is none); for a ``group``, its mode
    (``all``, ``any`` or ``none``);
``gap``
    for a failed numeric or date check, how far the member is from passing
    ("needs 120 more points", "turns 18 in 37 days", "joined 12 days too late"), else None;
``children``
    the nodes this check is made of.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from webapp.targeting.compiler import CompiledDefinition
from webapp.targeting.env import Env, Member


def node(kind: str, label: str, passed: bool, actual: Any = None, expected: Any = None,
         gap: str | None = None, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One explanation node (see the module docstring for the keys)."""
    return {"kind": kind, "label": label, "passed": passed, "actual": actual,
            "expected": expected, "gap": gap, "children": children or []}

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
