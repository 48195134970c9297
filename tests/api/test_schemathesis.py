"""Schemathesis against /api/v1/openapi.json, in process (WSGI): generated requests for every
operation, valid and deliberately invalid, must never get a 5xx, and every answer must have a
documented status, the documented content type and a body valid against the documented schema
(and against JSON:API's). The summary line is printed (pytest -s)."""

from __future__ import annotations

import os
import time

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import assert_jsonapi
from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment
from webapp.tokens import create_token

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
NEGATIVE_EXAMPLES = int(os.environ.get("API_FUZZ_NEGATIVE_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _seed() -> dict[str, list[str]]:
    """Data for the generated requests to find, and real values for their path parameters."""
    from webapp.webhooks.service import create_webhook

    member = make_member(external_id="FUZZ-1", email="fuzz@example.com")
    make_member(external_id="FUZZ-2")
    static = make_segment("Fuzz static", kind="static", customer_segment_id="FUZZ")
    add_to_list(static, member)
    dynamic = make_segment("Fuzz dynamic", include=[{"field": "points", "operator": ">=",
                                                     "value": 1}])
    offer = make_offer("Fuzz offer", audiences=[("in_any_segment", {"segments": [static.id]})])
    reward = make_reward("Fuzz reward", required=[dynamic], points=5)
    webhook, _ = create_webhook({"url": "https://example.com/hook"}, actor="test")
    spare, _ = create_token("spare", "support")
    return {"token_id": [str(spare.id)],"member_ref": ["FUZZ-1", member.id, "fuzz@example.com"],
            "segment_ref": ["FUZZ", str(dynamic.id)], "offer_id": [str(offer.id)],
            "reward_id": [str(reward.id)], "audience_id": [str(offer.audiences[0].id)],
            "webhook_id": [str(webhook.id)]}


def test_generated_requests_never_fail_the_server_or_the_schema(app, token_for,
                                                                jsonapi_validator):
    refs = _seed()
    token = token_for("admin")
    counter = iter(range(10**9))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    summary: dict[str, int] = {"operations": 0, "cases": 0}
    statuses: dict[int, int] = {}
    timings: dict[str, float] = {}
    skipped = ("docs", "openapi_document")
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") in skipped:
            continue
        summary["operations"] += 1

        # Positive cases follow the schemas; negative ones break them on purpose, and must be
        # refused with a documented 4xx, never a 5xx.
        @given(case=st.one_of(operation.as_strategy(),
                              operation.as_strategy(GenerationMode.NEGATIVE)))
        @settings(max_examples=EXAMPLES + NEGATIVE_EXAMPLES, deadline=None, derandomize=True,
                  database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case):
            # Every other case names existing resources, so deeper code runs, not only 404s
            # (deletes keep their generated names, so the seeded data stays for the others).
            # A generated token id could revoke the token this run uses: tokens get the spare.
            n = next(counter)
            if case.path_parameters and ("token_id" in case.path_parameters or (
                    case.method != "DELETE" and n % 2 == 0)):
                case.path_parameters = {
                    name: refs[name][(n // 2) % len(refs[name])] for name in case.path_parameters}
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            summary["cases"] += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)
            if response.status_code == 200 and case.path.endswith("/members.csv"):
                return  # a CSV download (documented as text/csv), not a JSON:API document
            assert_jsonapi(jsonapi_validator, response)

        started = time.perf_counter()
        run()
        timings[operation.label] = time.perf_counter() - started
    print(f"\nschemathesis: {summary['operations']} operations, {summary['cases']} requests "
          f"in {sum(timings.values()):.1f}s, statuses {dict(sorted(statuses.items()))}")
    slowest = sorted(timings.items(), key=lambda kv: -kv[1])[:5]
    print("slowest: " + ", ".join(f"{label} {seconds:.1f}s" for label, seconds in slowest))
    assert summary["operations"] >= 43
    assert not any(code >= 500 for code in statuses)
    assert sum(n for code, n in statuses.items() if code < 300) > summary["operations"]
