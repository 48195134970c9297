"""Fixtures for the targeting tests: databases with their own member tables, conformance counts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.targeting.conformance import CONFORMANCE_COUNTS
from tests.targeting.tables import MemberDB


def _databases() -> list[Any]:
    params = [pytest.param("sqlite://", id="sqlite")]
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        params.append(pytest.param(url, id="postgresql"))
    return params


@pytest.fixture(scope="session", params=_databases())
def member_db(request: pytest.FixtureRequest) -> Iterator[MemberDB]:
    """A member database per configured backend (SQLite always, PostgreSQL when configured)."""
    db = MemberDB(request.param)
    try:
        yield db
    finally:
        db.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the conformance counts (mapped, passed, divergent, skipped by reason)."""
    for suite, counts in sorted(CONFORMANCE_COUNTS.items()):
        terminalreporter.write_sep("-", f"conformance: {suite}")
        terminalreporter.write_line(
            f"mapped {counts['mapped']}, passed {counts['passed']}, deliberate divergences "
            f"{counts['divergent']}, skipped {counts['skipped']}")
        for reason, n in sorted(counts["skipped_by_reason"].items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"  skipped {n:3d}: {reason}")
