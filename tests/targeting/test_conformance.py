"""GrowthBook and Unleash conformance cases mapped onto Beacon's operators.

Any difference not listed (with its reason) in conformance_expectations.json fails; so does a
listed divergence that no longer diverges. The counts are printed in the terminal summary.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from tests.targeting.conformance import (
    CONFORMANCE_COUNTS,
    Case,
    growthbook_cases,
    unleash_cases,
)
from webapp.targeting import SegmentDefinitionError, evaluate_segment

EXPECTATIONS = json.loads(
    (Path(__file__).parent / "conformance_expectations.json").read_text())
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def _check(suite: str, cases: list[Case]) -> None:
    listed: dict[str, str] = EXPECTATIONS[suite]
    skipped = Counter(c.skipped for c in cases if c.skipped)
    mapped = [c for c in cases if not c.skipped]
    passed, divergent, unexpected, stale = 0, 0, [], []
    for case in mapped:
        assert case.definition is not None and case.member is not None
        try:
            got: bool | str = evaluate_segment(case.definition, case.member, now=NOW).matched
        except SegmentDefinitionError as exc:
            got = f"refused: {exc}"
        if got == case.expected:
            passed += 1
            if case.key in listed:
                stale.append(case.key)
        elif case.key in listed:
            divergent += 1
        else:
            unexpected.append(f"{case.key}: expected {case.expected}, Beacon gives {got}; "
                              f"definition {json.dumps(case.definition)}")
    unknown = sorted(set(listed) - {c.key for c in mapped})
    CONFORMANCE_COUNTS[suite] = {"mapped": len(mapped), "passed": passed,
                                 "divergent": divergent, "skipped": sum(skipped.values()),
                                 "skipped_by_reason": dict(skipped)}
    print(f"\n{suite}: mapped {len(mapped)}, passed {passed}, divergent {divergent}, "
          f"skipped {sum(skipped.values())} {dict(skipped)}")
    assert not unexpected, "unlisted differences:\n" + "\n".join(unexpected)
    assert not stale, f"listed as divergent but now agree: {stale}"
    assert not unknown, f"expectations for cases that are not mapped: {unknown}"


def test_growthbook_eval_condition() -> None:
    """GrowthBook evalCondition cases agree except the listed, deliberate divergences."""
    cases = growthbook_cases()
    assert len([c for c in cases if not c.skipped]) >= 60
    _check("growthbook", cases)


def test_unleash_constraints() -> None:
    """Unleash constraint tests agree except the listed, deliberate divergences."""
    cases = unleash_cases()
    assert len([c for c in cases if not c.skipped]) >= 40
    _check("unleash", cases)
