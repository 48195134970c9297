"""The raw-body filter that lets `read_document` skip walking a big body for unstorable values:
it may flag a body that holds none, never miss one that holds one."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.api.errors import ApiError
from webapp.api.jsonapi import _check_values, may_hold_unstorable

# Text with everything in it: NUL, lone surrogates, quotes, backslashes, non-ASCII.
TEXT = st.text(st.characters(codec=None, categories=None), max_size=6) | st.sampled_from(
    ["", "\x00", "\ud800", "\udfff", "\ud83d\ude00", '"', "\\u0000", "e5", "1e"])
NUMBERS = (st.integers(min_value=-(2**70), max_value=2**70)
           | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**18, 10**19])
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([9.3e18, -9.3e18, 1e300, 9223372036854775808.0, 0.5, 1.5e-7]))
VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)


def _refused(document) -> bool:
    try:
        _check_values(document, "")
    except ApiError:
        return True
    return False


@settings(max_examples=400, deadline=None)
@given(VALUES, st.booleans(), st.sampled_from([None, 2]))
def test_a_body_holding_an_unstorable_value_is_always_flagged(value, ascii_only, indent):
    text = json.dumps({"data": value}, ensure_ascii=ascii_only, indent=indent)
    raw = text.encode("utf-8", "surrogatepass")
    document = json.loads(raw)
    if _refused(document):
        assert may_hold_unstorable(raw), raw


@pytest.mark.parametrize("raw", [
    b'{"data": {"a": "x\\u0000y"}}',
    b'{"data": {"a": "\\ud800"}}',
    '{"data": {"a": "\ud800"}}'.encode("utf-8", "surrogatepass"),
    b'{"data": {"a": 9223372036854775808}}',
    b'{"data": {"a": -9223372036854775809}}',
    b'{"data": {"a": 1e999}}',
    b'{"data": {"a": 92233720368547758e3}}',
    b'{"data": {"" : 1}}',
    '{"data": {"a": "x\\u0000"}}'.encode("utf-16"),
])
def test_each_kind_of_unstorable_value_is_flagged_and_refused(raw):
    assert may_hold_unstorable(raw)
    assert _refused(json.loads(raw))


def test_an_ordinary_batch_is_not_walked():
    items = [{"type": "activities", "attributes": {
        "member": f"EXT{i:09d}", "activity_type": "purchase",
        "occurred_at": "2026-12-01T14:00:00.123456Z", "amount": 12.5,
        "properties": {"item": "coffee", "store": "north"}, "external_id": f"r-{i:09d}"}}
        for i in range(100)]
    assert not may_hold_unstorable(json.dumps({"data": items}).encode())
