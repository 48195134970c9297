"""The JSON:API validator every API test relies on agrees with JSON:API's own example documents."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import JSONAPI_DATA

EXAMPLES = sorted((JSONAPI_DATA / "response").rglob("*.json"))


def _name(path) -> str:
    return str(path.relative_to(JSONAPI_DATA / "response"))


def test_the_examples_are_in_the_repository() -> None:
    """Both kinds of example are present (a missing folder would make the checks below empty)."""
    names = [_name(p) for p in EXAMPLES]
    assert sum(n.startswith("valid/") for n in names) >= 20
    assert sum(n.startswith("invalid/") for n in names) >= 20


@pytest.mark.parametrize("path", [p for p in EXAMPLES if _name(p).startswith("valid/")], ids=_name)
def test_valid_examples_are_accepted(jsonapi_validator, path) -> None:
    """A document JSON:API calls valid passes (needs the patternProperties "" rewrite)."""
    errors = [e.message for e in jsonapi_validator.iter_errors(json.loads(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("path", [p for p in EXAMPLES if _name(p).startswith("invalid/")],
                         ids=_name)
def test_invalid_examples_are_refused(jsonapi_validator, path) -> None:
    """A document JSON:API calls invalid fails."""
    assert not jsonapi_validator.is_valid(json.loads(path.read_text()))
