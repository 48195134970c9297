"""Custom-field paths: any storable key can be named, with the same answer in Python and SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.targeting.tables import MemberDB
from tests.targeting.test_sql_property import SCALARS, _same_answers
from webapp.targeting import SegmentDefinitionError, criterion_label, parse_criterion
from webapp.targeting.paths import PathError, custom_field, key_problem, parse_path

#: The keys of issue 14.7, and others a path label or an escape could trip over.
AWKWARD = ["attr/a", "a~b", "$groups", "ключ", 'a"b', "a.b", "Customer Type", "", "a\\b",
           "a'b", "[0]", "0", "a]b", '"]', "\t", "a\nb", "😀", "é", "vip", "a-b_c", "*", "$"]
KEYS = st.one_of(st.sampled_from(AWKWARD),
                 st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                         max_size=6))
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("key", AWKWARD)
def test_every_awkward_key_round_trips(key: str) -> None:
    """The canonical field names the key exactly; camelCase and quoted plain keys fold into it."""
    field = custom_field([key])
    c = parse_criterion({"field": field, "operator": "exists"})
    assert c.path == (key,) and c.field == field
    assert parse_path(field[len("custom_fields"):]) == (key,)
    alias = parse_criterion({"field": "customFields" + field[len("custom_fields"):],
                             "operator": "exists"})
    assert alias.field == field


def test_spellings() -> None:
    """Plain keys take dots, others quotes and brackets; each path has one stored spelling."""
    assert parse_criterion({"field": 'custom_fields["vip"]', "operator": "exists"}
                           ).field == "custom_fields.vip"
    c = parse_criterion({"field": 'custom_fields.address["Customer Type"]["a.b"]',
                         "operator": "equals", "value": "x"})
    assert c.path == ("address", "Customer Type", "a.b")
    assert c.to_dict()["field"] == 'custom_fields.address["Customer Type"]["a.b"]'
    assert parse_criterion({"field": 'custom_fields["\\u043a\\u043b\\u044e\\u0447"]',
                            "operator": "exists"}).field == 'custom_fields["ключ"]'
    assert parse_criterion({"field": 'custom_fields["a\\"b"]', "operator": "exists"}
                           ).path == ('a"b',)
    assert criterion_label(c) == 'custom field address["Customer Type"]["a.b"] is "x"'
    assert criterion_label(parse_criterion({"field": "custom_fields.a.b", "operator": "exists"})
                           ) == "custom field a.b is set"


@pytest.mark.parametrize(("field", "message"), [
    ("custom_fields.a b", "custom field path"),
    ("custom_fields.a..b", "custom field path"),
    ('custom_fields["a"', "ends with ]"),
    ('custom_fields["a]', "not a JSON string"),
    ('custom_fields.["a"]', "custom field path"),
    ("custom_fields['a']", "custom field path"),
    ('custom_fields["a"] ', "custom field path"),
    ('custom_fields["a\\u0000b"]', r"U\+0000"),
    ('custom_fields["\\ud800"]', "lone surrogate"),
])
def test_bad_paths_are_refused_with_what_is_wrong(field: str, message: str) -> None:
    """A path off the syntax, or a key no database stores, is refused naming the problem."""
    with pytest.raises(SegmentDefinitionError, match=message):
        parse_criterion({"field": field, "operator": "exists"})


def test_only_unstorable_keys_have_a_problem() -> None:
    """A key is refused only for U+0000 or a lone surrogate."""
    assert all(key_problem(k) is None for k in AWKWARD)
    assert "holds U+0000" in (key_problem("a\0") or "")
    assert "surrogate" in (key_problem("\udfff") or "")
    with pytest.raises(PathError):
        parse_path("")


@st.composite
def documents(draw: Any) -> tuple[dict[str, Any], list[str]]:
    """Custom fields keyed by awkward keys (nested one level), and a path into them."""
    outer = draw(st.lists(KEYS, min_size=1, max_size=3, unique=True))
    inner = draw(st.lists(KEYS, min_size=1, max_size=2, unique=True))
    leaf = st.one_of(SCALARS, st.lists(SCALARS, max_size=2))
    doc: dict[str, Any] = {}
    for k in outer:
        doc[k] = (draw(st.dictionaries(st.sampled_from(inner), leaf, max_size=2))
                  if draw(st.booleans()) else draw(leaf))
    path = [draw(st.sampled_from(outer))]
    if draw(st.booleans()):
        path.append(draw(st.sampled_from(inner)))
    return doc, path


OPS = st.sampled_from(["equals", "not_equals", "in", "exists", "not_exists", "contains", ">"])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_awkward_keys_agree_in_python_and_sql(member_db: MemberDB, data: st.DataObject) -> None:
    """Random keys, random documents: SQL selects exactly the members Python matches."""
    people = [{"tier": "gold", "custom_fields": doc}
              for doc, _ in data.draw(st.lists(documents(), min_size=1, max_size=4))]
    _, path = data.draw(documents())
    if data.draw(st.booleans()):  # aim at a path some member really has
        cf = people[0]["custom_fields"]
        path = [data.draw(st.sampled_from(sorted(cf)))]
        if isinstance(cf[path[0]], dict) and cf[path[0]]:
            path.append(data.draw(st.sampled_from(sorted(cf[path[0]]))))
    present = [v for m in people for v in [_walk(m["custom_fields"], path)]
               if v is not None and not isinstance(v, dict)]
    op = data.draw(OPS)
    value: Any = data.draw(st.one_of(SCALARS, st.sampled_from(present or [1])))
    if op == "in":
        value = [value]
    elif op == ">":
        value = data.draw(st.integers(-3, 3))
    elif op == "contains" and isinstance(value, list):
        value = "x"
    raw: dict[str, Any] = {"field": custom_field(path), "operator": op}
    if op not in ("exists", "not_exists"):
        raw["value"] = value
    try:
        parse_criterion(raw)
    except SegmentDefinitionError:
        return
    group = data.draw(st.sampled_from(["include", "exclude"]))
    _same_answers(member_db, {"kind": "dynamic", group: [raw]}, people,
                  [set() for _ in people], NOW, "UTC")


def _walk(doc: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def test_each_issue_key_is_found_in_sql(member_db: MemberDB) -> None:
    """Each key of issue 14.7, alone and under another awkward key, selects its member."""
    people = [{"tier": "gold", "custom_fields": {k: i, "Customer Type": {k: f"v{i}"}}}
              for i, k in enumerate(AWKWARD)]
    for i, key in enumerate(AWKWARD):
        for path, value in (([key], i), (["Customer Type", key], f"v{i}")):
            definition = {"include": [{"field": custom_field(path), "operator": "equals",
                                       "value": value}]}
            _same_answers(member_db, definition, [dict(p) for p in people],
                          [set() for _ in people], NOW, "UTC")
