"""Beacon's targeting core: criteria, segment membership, audiences and visibility (SPEC §3-§4).

Pure: plain values in, frozen dataclasses and JSON-serializable dicts out. No Flask, no models,
nothing of the application outside this package.
Modules by job: `schema` (fields, types, the tier order), `operators` (operator registry),
`paths` (custom-field paths), `criteria`, `values`, `env`, `compiler`, `codegen`, `gaps`,
`cache`, `result` (the explanation tree format), `engine` (entry points), `graph`, `audiences`
(audience-type registry), `limits`, `visibility`, `errors`. The SQL compiler is
:func:`webapp.targeting.sql.compile_criteria` (imported on demand, it needs SQLAlchemy).

A new operator is a record in `operators.py` and an SQL hook in `sql.py`; a new audience type
is a record in `audiences.py` (its fields build the dashboard's form and the API's schema).
"""

from __future__ import annotations

from webapp.targeting.audiences import AUDIENCE_TYPES, validate_audience
from webapp.targeting.compiler import compile_definition
from webapp.targeting.criteria import (
    Criterion,
    DateValue,
    Definition,
    Group,
    canonical_field,
    count_criteria,
    criterion_label,
    describe_definition,
    fields_used,
    group_parts,
    is_group,
    is_time_dependent,
    item_label,
    parse_criterion,
    parse_definition,
    parse_item,
    raw_criteria,
    referenced_segments,
    walk_criteria,
    walk_groups,
)
from webapp.targeting.engine import compile_segment, evaluate_segment, matches
from webapp.targeting.errors import AudienceDefinitionError, SegmentDefinitionError
from webapp.targeting.graph import cycle_path, dependency_order, dependents, find_cycle
from webapp.targeting.result import SegmentResult
from webapp.targeting.schema import (
    FIELD_ALIASES,
    FIELDS,
    OPERATORS,
    OPERATORS_BY_TYPE,
    VALUE_SHAPES,
    field_type,
)
from webapp.targeting.values import age_on
from webapp.targeting.visibility import (
    Decision,
    SegmentFacts,
    evaluate_offer,
    evaluate_reward,
    segment_membership,
)

__all__ = [
    "AUDIENCE_TYPES", "AudienceDefinitionError", "Criterion", "DateValue", "Decision",
    "Definition", "FIELDS", "FIELD_ALIASES", "Group", "OPERATORS", "OPERATORS_BY_TYPE",
    "SegmentDefinitionError", "SegmentFacts", "SegmentResult", "VALUE_SHAPES", "age_on",
    "canonical_field", "compile_definition", "compile_segment", "count_criteria",
    "criterion_label", "cycle_path", "dependency_order", "dependents", "describe_definition",
    "evaluate_offer", "evaluate_reward", "evaluate_segment", "field_type", "fields_used",
    "find_cycle", "group_parts", "is_group", "is_time_dependent", "item_label", "matches",
    "parse_criterion", "parse_definition", "parse_item", "raw_criteria", "referenced_segments",
    "segment_membership", "validate_audience", "walk_criteria", "walk_groups",
]
