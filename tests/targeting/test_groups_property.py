"""Property: random nested any/all/none groups give the same answer in Python and in SQL."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.targeting.tables import MemberDB
from tests.targeting.test_sql_property import NOW, ZONES, _same_answers, criteria, members
from webapp.targeting import evaluate_segment, matches, parse_definition

MODES = st.sampled_from(["all", "any", "none"])


def items(people: list[dict[str, Any]], depth: int = 0) -> st.SearchStrategy[Any]:
    """A criterion or (above depth 3) a group of one to three items."""
    leaf = criteria(people)
    if depth >= 3:
        return leaf
    group = st.builds(lambda mode, xs: {mode: xs}, MODES,
                      st.lists(items(people, depth + 1), min_size=1, max_size=3))
    return st.one_of(leaf, group)


@st.composite
def nested(draw: Any) -> dict[str, Any]:
    """A clock, a zone, some members with memberships and a nested definition over them."""
    now = draw(NOW)
    people = draw(st.lists(members(now), min_size=1, max_size=6))
    links = [draw(st.sets(st.integers(1, 4), max_size=2)) for _ in people]
    include = draw(st.lists(items(people), max_size=3))
    exclude = draw(st.lists(items(people), max_size=2))
    return {"definition": {"kind": "dynamic", "include": include, "exclude": exclude},
            "people": people, "links": links, "now": now, "tz": draw(ZONES)}


def _reference(item: Any, member: dict[str, Any], **kw: Any) -> bool:
    """Whether an item holds, by SPEC §8 alone: each criterion asked on its own."""
    for mode in ("all", "any", "none"):
        if isinstance(item, dict) and mode in item and "field" not in item:
            held = [_reference(i, member, **kw) for i in item[mode]]
            return all(held) if mode == "all" else any(held) if mode == "any" else not any(held)
    return matches({"include": [item]}, member, **kw)


def _group_nodes_consistent(node: dict[str, Any]) -> None:
    """Every group node lists the branches that hold and decides by its mode."""
    if node["kind"] == "group":
        held = [n for n, child in enumerate(node["children"], 1) if child["passed"]]
        assert node["actual"] == held
        assert node["expected"] in ("all", "any", "none")
    for child in node["children"]:
        _group_nodes_consistent(child)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(scenario=nested())
def test_nested_python_and_sql_agree(member_db: MemberDB, scenario: dict[str, Any]) -> None:
    """Whatever the nesting, SQL selects exactly the members the Python evaluator matches."""
    _same_answers(member_db, scenario["definition"], scenario["people"], scenario["links"],
                  scenario["now"], scenario["tz"])


@settings(max_examples=150, deadline=None)
@given(scenario=nested())
def test_nested_matches_the_spec(scenario: dict[str, Any]) -> None:
    """The compiled matcher and the explanation agree with a plain reading of SPEC §8."""
    d = scenario["definition"]
    stored = parse_definition(d).to_dict()
    assert parse_definition(stored).to_dict() == stored  # the stored form reads back as itself
    assert matches(stored, scenario["people"][0], now=scenario["now"], tz=scenario["tz"],
                   memberships=scenario["links"][0]) is matches(
        d, scenario["people"][0], now=scenario["now"], tz=scenario["tz"],
        memberships=scenario["links"][0])
    for m, links in zip(scenario["people"], scenario["links"], strict=True):
        kw = {"now": scenario["now"], "tz": scenario["tz"], "memberships": links}
        expected = (all(_reference(i, m, **kw) for i in d["include"])
                    and not any(_reference(i, m, **kw) for i in d["exclude"]))
        assert matches(d, m, **kw) is expected
        result = evaluate_segment(d, m, **kw)
        assert result.matched is expected
        assert result.explanation["passed"] is expected
        _group_nodes_consistent(result.explanation)
