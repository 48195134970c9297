"""Schemathesis against /api/v1/openapi.json with every check, as `schemathesis run --checks all`
would run it: examples, coverage (boundaries, unsupported methods, missing headers), fuzzing
(valid and deliberately invalid requests) and stateful sequences (create, then read, change and
delete what was created), against a live server.

Every check must pass: no 5xx; documented statuses, content types, headers and bodies (every body
also a valid JSON:API document); schema-valid requests accepted and schema-violating ones refused;
the Allow header as documented; credentials required; created resources reachable and deleted
ones gone. The only answers let through are refusals of schema-valid requests that no JSON
Schema can foresee (SEMANTIC below: an id that names no record, a cursor that was not handed
out, criteria whose value does not fit their field); they are counted and printed (pytest -s).

The run is bounded and repeatable: a fixed number of examples per operation and a fixed seed.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import jsonschema
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from tests.api.conftest import MEDIA, SCHEMA_PATH, _fix_patterns, _is_absolute_uri
from tests.factories import add_to_list, make_member, make_offer, make_reward, make_segment

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "3"))
SEED = int(os.environ.get("API_FUZZ_SEED", "20261205"))
#: A refusal is a 4xx; the document lists 413 for bulk requests over their item limit, which
#: schemathesis does not count as a refusal by default.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

#: Refusals of schema-valid requests that depend on data or on rules across values, which a
#: JSON Schema cannot state: (error code, where it points) -> why.
SEMANTIC = {
    ("invalid_cursor", "page[cursor]"): "a cursor is opaque: only one a `next` link handed out "
                                        "names a position",
    ("invalid_attribute", "/data/attributes/include"): "criteria: the value must fit the field "
                                                       "and operator, and the field must exist",
    ("invalid_attribute", "/data/attributes/exclude"): "criteria (as for include)",
    ("invalid_criterion", "/data/attributes/include"): "criteria (as for include)",
    ("invalid_criterion", "/data/attributes/exclude"): "criteria (as for include)",
    ("invalid_attribute", "/data/attributes/event_filter/segments"): "a segment that does not "
                                                                     "exist",
    ("invalid_attribute", "/data/attributes/configuration"): "an audience's segments must exist "
                                                             "and its ages make sense",
    ("invalid_attribute", "/data/attributes/limit_type"): "a limit must fit its offer: not a "
                                                          "second of the same type and window, "
                                                          "counting what the offer's other "
                                                          "limits count, activations only "
                                                          "where the offer requires them",
    ("invalid_attribute", "/data/attributes/expire_at"): "expire_at must come after publish_at",
    ("invalid_attribute", "/data/attributes/birthday"): "a birthday lies between 1900 and today",
    ("conflict", "/data"): "a unique value (external id, customer segment id) already taken",
    ("blocked_host", "/data/attributes/url"): "a webhook's host must resolve, to public "
                                               "addresses only",
    ("invalid_attribute", "/data/attributes/owner"): "a segment's owner must be a user of "
                                                     "Beacon",
    ("invalid_attribute", "/data/attributes/example"): "a declared field's example must be "
                                                       "of its declared type and allowed",
    ("invalid_attribute", "/data/attributes/allowed_values"): "a declared field's allowed "
                                                              "values must be of its type",
    ("invalid_attribute", "/data/attributes/member"): "an activity's member must exist",
    ("invalid_attribute", "/data/attributes/amount"): "an amount has at most 4 decimal places "
                                                      "and is below 10^14",
    ("invalid_attribute", "/data/attributes/occurred_at"): "an activity happened between the "
                                                           "years 1900 and 2999",
    ("invalid_attribute", "/data/attributes/properties"): "property names follow the custom "
                                                          "field key rules",
    ("invalid_parameter", "as_of"): "an as-of moment must lie within the kept history "
                                    "(after it begins, within retention, not in the future)",
    # Query parameters are described one by one: OpenAPI cannot say that two exclude each other.
    ("repeated_parameter", "limit"): "page[size] and its alias limit: give one of the two",
    ("repeated_parameter", "type"): "filter[kind] and its alias type: give one of the two",
    # The stateful phase follows the search's self link (/members/search) into the member
    # operations, though the document's member_ref excludes that word: the route is POST only.
    ("method_not_allowed", ""): "/members/search is a route of its own (POST only)",
}
#: "Created resource not found" (ST302) when the 404 names a related resource in the request
#: body (JSON:API asks for 404 there), not the resource the earlier POST created.
BODY_404 = "a 404 for a related resource the request body names, not the created one"


def _jsonapi_validator() -> jsonschema.Draft7Validator:
    checker = jsonschema.FormatChecker()
    checker.checks("uri")(_is_absolute_uri)
    return jsonschema.Draft7Validator(_fix_patterns(json.loads(SCHEMA_PATH.read_text())),
                                      format_checker=checker)


JSONAPI = _jsonapi_validator()


@schemathesis.check
def jsonapi_document(ctx, response, case) -> None:
    """Every API answer with a body is a valid JSON:API document of the JSON:API media type."""
    if (case.operation.path in ("/openapi.json", "/docs") or response.status_code == 204
            or case.method.upper() in ("OPTIONS", "HEAD")):  # answers without a body
        return None
    if response.status_code == 200 and case.operation.path.endswith("/members.csv"):
        return None  # a CSV download (documented as text/csv), not a JSON:API document
    content_type = response.headers.get("content-type") or response.headers.get("Content-Type")
    if isinstance(content_type, list):
        content_type = content_type[0]
    assert (content_type or "").split(";")[0].strip() == MEDIA, content_type
    errors = sorted(JSONAPI.iter_errors(json.loads(response.content)), key=lambda e: list(e.path))
    assert not errors, "not JSON:API: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:3])
    return None


def _seed() -> dict[str, str]:
    """Data for the generated requests to find, and real values for their path parameters."""
    from webapp.services.webhooks import create_webhook

    member = make_member(external_id="FUZZ-1", email="fuzz@example.com")
    make_member(external_id="FUZZ-2")
    static = make_segment("Fuzz static", kind="static", customer_segment_id="FUZZ")
    add_to_list(static, member)
    dynamic = make_segment("Fuzz dynamic", include=[{"field": "points", "operator": ">=",
                                                     "value": 1}])
    offer = make_offer("Fuzz offer", audiences=[("in_any_segment", {"segments": [static.id]})])
    reward = make_reward("Fuzz reward", required=[dynamic], points=5)
    webhook, _ = create_webhook({"url": "https://example.com/hook"}, actor="test")
    from webapp.services.offer_limits import add_limit
    from webapp.services.redemptions import redeem

    limit = add_limit(offer, "membership_award_count", {"limit": 2, "window": {"days": 7}},
                      actor="test")
    redemption, _, _ = redeem(member, reward, actor="test")
    # No token id: a generated DELETE /tokens/{token_id} must not revoke the run's own token.
    return {"member_ref": "FUZZ-1", "segment_ref": "FUZZ", "offer_id": str(offer.id),
            "reward_id": str(reward.id), "audience_id": str(offer.audiences[0].id),
            "webhook_id": str(webhook.id), "limit_id": str(limit.id),
            "redemption_id": str(redemption.id)}


def _semantic(response) -> str | None:
    """The SEMANTIC reason when every error of a 4xx answer is one of them, else None."""
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return None
    reasons = []
    for error in errors:
        source = error.get("source") or {}
        where = source.get("pointer") or source.get("parameter") or ""
        reason = next((why for (code, prefix), why in SEMANTIC.items()
                       if error.get("code") == code and where.startswith(prefix)), None)
        if reason is None:
            return None
        reasons.append(reason)
    return reasons[0] if reasons else None


def _names_body(response) -> bool:
    """Whether every error of the answer points into the request body (source.pointer)."""
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(errors) and all((e.get("source") or {}).get("pointer") for e in errors)


def _scan(url: str, token: str):
    """Run every phase with every check; returns (failures, semantic refusals, statistics)."""
    config = SchemathesisConfig.from_dict({
        "seed": SEED, "workers": 1, "cache": {"enabled": False},
        "headers": {"Authorization": f"Bearer {token}"},
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        "checks": {"enabled": True,
                   "negative_data_rejection": {"expected-statuses": REFUSALS}},
        "operations": [{"include-operation-id": name, "enabled": False}
                       for name in ("docs", "openapi_document")],
    })
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json", config=config)
    failures: dict[tuple[str, str, str], str] = {}
    semantic: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.NonFatalError | events.FatalError):
            failures[("error", str(event.label if hasattr(event, "label") else ""), "")] = \
                repr(getattr(event, "value", event))[:2000]
            continue
        if not isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            continue
        recorder = event.recorder
        stats["requests"] += len(recorder.interactions)
        for case_id, checks in recorder.checks.items():
            for check in checks:
                stats["checks"] += 1
                info = check.failure_info
                if info is None:
                    continue
                failure = info.failure
                interaction = recorder.interactions.get(case_id)
                response = interaction.response if interaction is not None else None
                if failure.code == "ST202" and response is not None:
                    reason = _semantic(response)
                    if reason is not None:
                        semantic[reason] += 1
                        continue
                if failure.code == "ST302" and response is not None and _names_body(response):
                    semantic[BODY_404] += 1
                    continue
                answer = (response.content or b"")[:400].decode("utf-8", "replace") \
                    if response is not None else ""
                key = (recorder.label, failure.code, failure.title)
                failures.setdefault(key, f"{recorder.label}: {failure.code} {failure.title}\n"
                                         f"{failure.message[:600]}\n{info.code_sample[:800]}\n"
                                         f"answer: {answer}")
    return failures, semantic, stats


def test_the_server_keeps_to_its_openapi_document_under_every_check(app, token_for,
                                                                    live_server):
    _seed()
    token = token_for("admin")
    started = time.perf_counter()
    failures, semantic, stats = _scan(live_server, token)
    print(f"\nschemathesis (all checks, {EXAMPLES} examples per operation, seed {SEED}): "
          f"{stats['requests']} requests, {stats['checks']} checks in "
          f"{time.perf_counter() - started:.0f}s; {len(failures)} failures; refusals of "
          f"schema-valid requests no schema can foresee: {dict(semantic) or 'none'}")
    assert stats["requests"] > 300
    assert not failures, "\n\n".join(failures.values())
