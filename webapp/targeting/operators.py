"""The operator registry: every criterion operator with its validation, wording and Python test.

One :class:`Operator` per operator, registered with :func:`register`, holds what the rest of
the core and the dashboard read about it:

* validation: the field types it applies to (``types``), the shape of its value (``shape``:
  ``"one value"``, ``"list"``, ``"number or date"`` or ``"none"``) and, when the field type's
  usual value check does not fit, its own ``check``;
* wording: the criteria builder's words (``words``, with ``words_by_type`` for dates, badges and
  segments) and the phrase of the readable label (``phrase``, ``phrase_by_type``);
* its Python hook: ``python(criterion, value, fold)`` returns the test `pred(value, env)` of a
  present member value (positive operators only; a negative operator names the positive one it
  negates in ``negates``, and a missing value makes it true);
* ``compare`` for the ordering operators (Python values and SQL columns alike).

Its SQL hook is in :data:`webapp.targeting.sql.SQL_OPERATORS` under the same name (that module
needs SQLAlchemy, which the rest of the core does not). The tables of
:mod:`webapp.targeting.schema` (`OPERATORS`, `OPERATORS_BY_TYPE`, `NEGATIVE`, `ORDERING`,
`VALUE_SHAPES`) are derived from this registry. Adding an operator: register it here, give it an
SQL hook in ``sql.py``, and test it (``tests/targeting/test_operators.py``).
"""

from __future__ import annotations

import operator as py_operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webapp.targeting.schema import (
    ACTIVITY,
    ANY,
    CONTAINS,
    DATE,
    DATETIME,
    EQUALS,
    EXISTS,
    GT,
    GTE,
    IN,
    INTEGER,
    LIST,
    LT,
    LTE,
    NOT_CONTAINS,
    NOT_EQUALS,
    NOT_EXISTS,
    NOT_IN,
    SEGMENT,
    STRING,
)
from webapp.targeting.values import is_number, make_equals, make_in

#: `pred(value, env) -> bool` on a present member value.
Pred = Callable[[Any, Any], bool]
PythonHook = Callable[[Any, Any, Callable[[str], str] | None], Pred]


@dataclass(frozen=True, slots=True)
class Operator:
    """One criterion operator: where it applies, its words, and how Python evaluates it."""

    name: str
    types: tuple[str, ...]
    shape: str
    words: str
    phrase: str
    python: PythonHook | None = None
    negates: str | None = None
    compare: Callable[[Any, Any], Any] | None = None
    words_by_type: Mapping[str, str] = field(default_factory=dict)
    phrase_by_type: Mapping[str, str] = field(default_factory=dict)
    check: Callable[[Any, str], str | None] | None = None

    def builder_words(self, kind: str) -> str:
        """The criteria builder's words for this operator on a field of type `kind`."""
        return self.words_by_type.get(kind, self.words)

    def label_phrase(self, kind: str) -> str:
        """The readable label's phrase for this operator on a field of type `kind`."""
        return self.phrase_by_type.get(kind, self.phrase)


#: Every operator, by name, in the order the criteria builder lists them.
REGISTRY: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    """Add an operator to the registry (a name is registered once)."""
    if op.name in REGISTRY:
        raise ValueError(f"operator {op.name!r} is registered twice")
    if (op.negates is None) == (op.python is None):
        raise ValueError(f"operator {op.name!r}: give a Python hook or the operator it negates")
    REGISTRY[op.name] = op
    return op


# --- Python hooks of the built-in operators --------------------------------------------------


def _equals(c: Any, value: Any, fold_fn: Callable[[str], str] | None) -> Pred:
    eq = make_equals(value, fold_fn)
    return lambda v, env: eq(v)


def _in(c: Any, value: Any, fold_fn: Callable[[str], str] | None) -> Pred:
    one = make_in(value, fold_fn)

    def in_(v: Any, env: Any) -> bool:
        if v.__class__ is list:
            return any(one(x) for x in v)
        return one(v)
    return in_


def _contains(c: Any, value: Any, fold_fn: Callable[[str], str] | None) -> Pred:
    elem = make_equals(value, fold_fn)
    if isinstance(value, str):
        sub = fold_fn(value) if fold_fn else value

        def contains_str(v: Any, env: Any) -> bool:
            if isinstance(v, str):
                return sub in (fold_fn(v) if fold_fn else v)
            if v.__class__ is list:
                return any(elem(x) for x in v)
            return False
        return contains_str

    def contains_elem(v: Any, env: Any) -> bool:
        return v.__class__ is list and any(elem(x) for x in v)
    return contains_elem


def _exists(c: Any, value: Any, fold_fn: Callable[[str], str] | None) -> Pred:
    return lambda v, env: True


def _ordering(cmp: Callable[[Any, Any], bool]) -> PythonHook:
    def hook(c: Any, value: Any, fold_fn: Callable[[str], str] | None) -> Pred:
        return lambda v, env: is_number(v) and cmp(v, value)
    return hook


_ALL = (STRING, INTEGER, LIST, DATE, DATETIME, ANY)
_ORDERED = (INTEGER, DATE, DATETIME, ANY)

register(Operator(EQUALS, (*_ALL, ACTIVITY), "one value", "is", "is", _equals,
                  words_by_type={DATE: "is on", DATETIME: "is on", LIST: "are exactly"}))
register(Operator(NOT_EQUALS, (*_ALL, ACTIVITY), "one value", "is not", "is not", negates=EQUALS,
                  words_by_type={DATE: "is not on", DATETIME: "is not on",
                                 LIST: "are not exactly"}))
register(Operator(IN, (STRING, INTEGER, LIST, ANY, SEGMENT), "list", "is one of", "is", _in,
                  words_by_type={LIST: "has any of", SEGMENT: "is in"}))
register(Operator(NOT_IN, (STRING, INTEGER, LIST, ANY, SEGMENT), "list", "is none of",
                  "is none of", negates=IN,
                  words_by_type={LIST: "has none of", SEGMENT: "is not in"}))
register(Operator(CONTAINS, (STRING, LIST, ANY), "one value", "contains", "contains", _contains,
                  words_by_type={LIST: "has badge"}))
register(Operator(NOT_CONTAINS, (STRING, LIST, ANY), "one value", "does not contain",
                  "does not contain", negates=CONTAINS,
                  words_by_type={LIST: "does not have badge"}))
for _name, _words, _phrase, _date_words, _cmp in (
        (GTE, "is at least", "at least", "on or after", py_operator.ge),
        (GT, "is more than", "more than", "after", py_operator.gt),
        (LTE, "is at most", "at most", "on or before", py_operator.le),
        (LT, "is less than", "less than", "before", py_operator.lt)):
    register(Operator(_name, (*_ORDERED, ACTIVITY), "number or date", _words, _phrase,
                      _ordering(_cmp), compare=_cmp,
                      words_by_type={DATE: f"is {_date_words}", DATETIME: f"is {_date_words}"},
                      phrase_by_type={DATE: _date_words, DATETIME: _date_words}))
register(Operator(EXISTS, _ALL, "none", "is set", "is set", _exists,
                  words_by_type={LIST: "are set"}))
register(Operator(NOT_EXISTS, _ALL, "none", "is not set", "is not set", negates=EXISTS,
                  words_by_type={LIST: "are not set"}))

#: All operators, in the order the criteria builder lists them.
OPERATORS: tuple[str, ...] = tuple(REGISTRY)
#: Ordering operators (numbers and dates).
ORDERING = frozenset(name for name, op in REGISTRY.items() if op.compare is not None)
#: Each negative operator and the positive one it negates.
NEGATIVE = {name: op.negates for name, op in REGISTRY.items() if op.negates is not None}
#: Which operators fit each field type.
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    kind: tuple(name for name, op in REGISTRY.items() if kind in op.types)
    for kind in (STRING, INTEGER, LIST, DATE, DATETIME, ANY, SEGMENT, ACTIVITY)
}
#: The shape of the value each operator takes ("none" = no value), for the criteria builder.
VALUE_SHAPES: dict[str, str] = {name: op.shape for name, op in REGISTRY.items()}
