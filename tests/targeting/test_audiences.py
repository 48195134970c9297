"""The audience registry: each type's validation names the field it refuses, and its words."""

from __future__ import annotations

import pytest

from webapp.targeting import AUDIENCE_TYPES, AudienceDefinitionError, validate_audience
from webapp.targeting.audiences import REGISTRY, audience_label, describe_audience


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("everyone", {}, "audience_type"),
    ("age_within", [], "configuration"),
    ("age_within", {"oldest": 3}, "configuration"),
    ("age_within", {"minimum_age": -1}, "configuration.minimum_age"),
    ("age_within", {"maximum_age": "9"}, "configuration.maximum_age"),
    ("age_within", {}, "configuration.minimum_age"),
    ("age_within", {"minimum_age": 30, "maximum_age": 20}, "configuration.minimum_age"),
    ("in_all_segments", {"segments": []}, "configuration.segments"),
    ("in_any_segment", {"segments": [1, 1]}, "configuration.segments"),
    ("in_any_segment", {"segments": [1], "x": 1}, "configuration"),
])
def test_each_refusal_names_its_field(kind: str, config: object, field: str) -> None:
    """The field comes with the error, so no caller has to guess it from the message."""
    with pytest.raises(AudienceDefinitionError) as refused:
        validate_audience(kind, config)
    assert refused.value.field == field


def test_registry_wording() -> None:
    """Labels and descriptions come from the audience type's record."""
    assert AUDIENCE_TYPES == tuple(REGISTRY) == ("age_within", "in_all_segments",
                                                 "in_any_segment")
    assert [audience_label(k) for k in AUDIENCE_TYPES] == ["Age", "All segments", "Any segment"]
    assert describe_audience("age_within", {"minimum_age": 18, "maximum_age": 25}) == (
        "18 to 25 years old")
    assert describe_audience("in_all_segments", {"segments": [1, 2]}, {1: "VIPs"}) == (
        "in all of: VIPs, segment #2")
