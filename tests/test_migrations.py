"""The migrations and the models describe the same schema (what `flask db check` checks)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from webapp.extensions import db


def test_models_match_the_migrated_schema(app):
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert differences == []


def test_event_indexes_are_hash_and_brin_on_postgresql(app):
    """Index kinds are not compared above; migration 0003 sets them on PostgreSQL."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps btree indexes")
    definitions = dict(db.session.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'membership_events'")).all())
    assert "USING hash (member_id)" in definitions["ix_membership_events_member_id"]
    assert "USING brin (upload_id)" in definitions["ix_membership_events_upload_id"]
    assert "autosummarize" in definitions["ix_membership_events_upload_id"]
