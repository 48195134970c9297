"""Map the GrowthBook `evalCondition` and Unleash constraint cases onto Beacon criteria.

Each case is either mapped (a Beacon definition and member, plus the other project's expected
answer) or skipped with the reason it cannot be expressed in Beacon's operators.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The other projects' data files, kept in the repository (origins in its README.md).
CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "conformance"
#: The Unleash suites that hold constraint tests Beacon's operators can express; the other
#: suites of the upstream index (rollouts, variants, semver, regex, CIDR, dependencies, ...)
#: have none, so they are not kept (tests/data/conformance/README.md).
UNLEASH_SUITES = ("01-simple-examples.json", "09-strategy-constraints.json",
                  "11-strategy-constraints-edge-cases.json", "13-constraint-operators.json",
                  "18-utf8-flag-names.json")
#: Filled by the conformance tests, printed by the terminal summary in conftest.py.
CONFORMANCE_COUNTS: dict[str, dict[str, Any]] = {}
_KEY = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


class Skip(Exception):
    """The case uses something Beacon's criteria do not have."""


@dataclass(frozen=True)
class Case:
    """One conformance case: mapped (definition/member) or skipped (reason)."""

    key: str
    expected: bool
    definition: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    skipped: str | None = None


# --- GrowthBook ---------------------------------------------------------------------------------

_GB_SIMPLE = {"$eq": "equals", "$ne": "not_equals", "$in": "in", "$nin": "not_in",
              "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_GB_SKIPS = {"$regex": "regular expressions ($regex)", "$regexi": "regular expressions ($regex)",
             "$type": "JSON type tests ($type)", "$size": "list sizes ($size)",
             "$inGroup": "saved groups ($inGroup)", "$notInGroup": "saved groups ($inGroup)"}


def _field(attr: str) -> str:
    if not _KEY.match(attr):
        raise Skip("attribute name is not a custom-field path")
    return "custom_fields." + attr


def _gb_attr(attr: str, spec: Any) -> list[dict[str, Any]]:
    field = _field(attr)
    if not (isinstance(spec, dict) and spec and all(k.startswith("$") for k in spec)):
        if spec is None:
            return [{"field": field, "operator": "not_exists"}]
        return [{"field": field, "operator": "equals", "value": spec}]
    out: list[dict[str, Any]] = []
    for op, value in spec.items():
        if op in _GB_SIMPLE:
            if value is None and op in ("$eq", "$ne"):
                out.append({"field": field,
                            "operator": "not_exists" if op == "$eq" else "exists"})
            else:
                out.append({"field": field, "operator": _GB_SIMPLE[op], "value": value})
        elif op in ("$ini", "$nini"):
            out.append({"field": field, "operator": "in" if op == "$ini" else "not_in",
                        "value": value, "case_insensitive": True})
        elif op == "$exists":
            out.append({"field": field, "operator": "exists" if value else "not_exists"})
        elif op in ("$all", "$alli"):
            if not isinstance(value, list):
                raise Skip("$all without a list")
            out.extend({"field": field, "operator": "contains", "value": v,
                        "case_insensitive": op == "$alli"} for v in value)
        elif op == "$elemMatch":
            if isinstance(value, dict) and set(value) == {"$eq"}:
                out.append({"field": field, "operator": "contains", "value": value["$eq"]})
            elif isinstance(value, dict) and set(value) == {"$in"}:
                out.append({"field": field, "operator": "in", "value": value["$in"]})
            else:
                raise Skip("$elemMatch with a condition other than $eq/$in")
        elif op == "$not":
            if (isinstance(value, dict) and set(value) == {"$elemMatch"}
                    and isinstance(value["$elemMatch"], dict)
                    and set(value["$elemMatch"]) == {"$eq"}):
                out.append({"field": field, "operator": "not_contains",
                            "value": value["$elemMatch"]["$eq"]})
            else:
                raise Skip("$not of a condition other than $elemMatch $eq")
        elif op.startswith("$v"):
            raise Skip("semantic versions ($vgt, $veq, ...)")
        elif op in _GB_SKIPS:
            raise Skip(_GB_SKIPS[op])
        else:
            raise Skip("unknown operator (GrowthBook evaluates it as false)")
    return out


def _branch(cond: Any, depth: int) -> Any:
    """A condition as one item (a criterion, or an all-group of several), or None when it is
    empty (always true)."""
    items = _gb_items(cond, depth)
    if not items:
        return None
    return items[0] if len(items) == 1 else _group("all", items, depth)


def _group(mode: str, items: list[Any], depth: int) -> dict[str, Any]:
    if depth >= 3:
        raise Skip("conditions nested deeper than Beacon's three levels of groups")
    return {mode: items}


def _gb_items(cond: Any, depth: int = 0) -> list[Any]:
    """A GrowthBook condition as include items: criteria, and any/all/none groups for $or,
    $and, $nor and $not."""
    if not isinstance(cond, dict):
        raise Skip("a condition that is not an object")
    items: list[Any] = []
    for key, spec in cond.items():
        if key == "$and":
            for sub in spec:
                items += _gb_items(sub, depth)
        elif key in ("$or", "$nor", "$not"):
            subs = [spec] if key == "$not" else list(spec)
            branches = [_branch(sub, depth + 1) for sub in subs]
            if key == "$or":
                if not branches or any(b is None for b in branches):
                    continue  # an empty $or, or an empty branch, always holds
                items.append(_group("any", branches, depth))
            else:
                if any(b is None for b in branches):
                    raise Skip("$not/$nor of an empty condition (never true)")
                if branches:
                    items.append(_group("none", branches, depth))
        else:
            items += _gb_attr(key, spec)
    return items


def _gb_definition(cond: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "dynamic", "include": _gb_items(cond), "exclude": []}


def growthbook_cases() -> list[Case]:
    """Every GrowthBook evalCondition case, mapped or skipped."""
    data = json.loads((CONFORMANCE / "growthbook" / "cases.json").read_text())
    out = []
    for i, case in enumerate(data["evalCondition"]):
        name, cond, attrs, expected = case[:4]
        key = f"{i:03d} {name}"
        if len(case) > 4:
            out.append(Case(key, expected, skipped="saved groups ($inGroup)"))
            continue
        try:
            definition = _gb_definition(cond)
        except Skip as skip:
            out.append(Case(key, expected, skipped=str(skip)))
            continue
        out.append(Case(key, expected, definition, {"custom_fields": attrs}))
    return out


# --- Unleash ----------------------------------------------------------------------------------

_NUM = {"NUM_EQ": "equals", "NUM_GT": ">", "NUM_GTE": ">=", "NUM_LT": "<", "NUM_LTE": "<="}
_NEGATE = {"in": "not_in", "not_in": "in", "contains": "not_contains", "equals": "not_equals",
           ">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def _context_value(context: dict[str, Any], name: str) -> Any:
    if name in context and name != "properties":
        return context[name]
    return (context.get("properties") or {}).get(name)


def _unleash_constraint(c: dict[str, Any], context: dict[str, Any],
                        member: dict[str, Any]) -> dict[str, Any]:
    name, op = c["contextName"], c["operator"]
    values = c.get("values") or []
    inverted = bool(c.get("inverted"))
    ci = bool(c.get("caseInsensitive"))
    raw = _context_value(context, name)
    if op in ("IN", "NOT_IN"):
        field = _field(name)
        crit: dict[str, Any] = {"field": field, "operator": "in" if op == "IN" else "not_in",
                                "value": values}
        if raw is not None:
            member["custom_fields"][name] = raw
    elif op == "STR_CONTAINS":
        if len(values) != 1:
            raise Skip("STR_CONTAINS with several values (an OR)")
        crit = {"field": _field(name), "operator": "contains", "value": values[0]}
        if raw is not None:
            member["custom_fields"][name] = raw
    elif op in _NUM:
        # Unleash's context is all strings; the NUM_ operator declares the attribute a number,
        # so the member holds it as a JSON number (Beacon itself never coerces).
        crit = {"field": _field(name), "operator": _NUM[op], "value": json.loads(c["value"])}
        if raw is not None:
            member["custom_fields"][name] = json.loads(raw)
    elif op in ("DATE_AFTER", "DATE_BEFORE"):
        if name != "currentTime":
            raise Skip("dates on a context field other than currentTime")
        # A datetime attribute: Beacon's datetime fields are created_at/updated_at.
        crit = {"field": "created_at", "operator": ">" if op == "DATE_AFTER" else "<",
                "value": c["value"]}
        if raw is not None:
            member["created_at"] = raw
    elif op.startswith("SEMVER"):
        raise Skip("semantic versions (SEMVER_*)")
    elif op in ("STR_STARTS_WITH", "STR_ENDS_WITH"):
        raise Skip("prefix/suffix operators (STR_STARTS_WITH, STR_ENDS_WITH)")
    elif op == "REGEX":
        raise Skip("regular expressions (REGEX)")
    elif "CIDR" in op or op.startswith("IP"):
        raise Skip("IP address ranges")
    else:
        raise Skip("unknown operator (Unleash evaluates it as false)")
    if ci:
        crit["case_insensitive"] = True
    if inverted:
        crit["operator"] = _NEGATE[crit["operator"]]
    return crit


def _unleash_case(feature: dict[str, Any] | None, context: dict[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    if feature is None:
        raise Skip("unknown toggle (not a constraint test)")
    if not feature.get("enabled", True):
        raise Skip("toggle switched off (not a constraint test)")
    if feature.get("dependencies"):
        raise Skip("dependent features")
    strategies = feature.get("strategies") or []
    if not strategies:
        raise Skip("no strategies (not a constraint test)")
    if len(strategies) > 1:
        raise Skip("several strategies (an OR of constraint sets)")
    strategy = strategies[0]
    if strategy.get("name") != "default":
        raise Skip("rollout or targeting strategy other than default")
    if strategy.get("segments"):
        raise Skip("Unleash global segments")
    member: dict[str, Any] = {"custom_fields": {}}
    include = [_unleash_constraint(c, context, member) for c in strategy.get("constraints") or []]
    return {"kind": "dynamic", "include": include, "exclude": []}, member


def unleash_cases() -> list[Case]:
    """Every Unleash specification test, mapped or skipped."""
    base = CONFORMANCE / "unleash" / "specifications"
    out = []
    for suite in UNLEASH_SUITES:
        data = json.loads((base / suite).read_text())
        features = {f["name"]: f for f in (data.get("state") or {}).get("features", [])}
        for test in data.get("tests", []):
            key = f"{suite} {test['description']}"
            expected = bool(test.get("expectedResult"))
            try:
                definition, member = _unleash_case(features.get(test.get("toggleName")),
                                                   test.get("context") or {})
            except Skip as skip:
                out.append(Case(key, expected, skipped=str(skip)))
                continue
            out.append(Case(key, expected, definition, member))
    return out
