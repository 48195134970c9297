"""membership events: hash index on member_id, BRIN on upload_id (PostgreSQL)

Every membership change writes one event per member, so the events' index upkeep is part of
every upload, rule refresh and override. On PostgreSQL two of the four indexes change kind:

- member_id is only ever looked up by equality (a member's events, the API's
  filter[member]); a hash index keeps a 4-byte code per row instead of the 36-character id
  and takes about half the upkeep of the btree.
- upload_id follows the id order (an upload writes its events in one statement, so they sit
  together in the table); a BRIN index keeps one summary per block range, costs next to
  nothing to maintain, and still finds one upload's events (undo) by their block ranges
  (autosummarize: each filled range is summarized soon after, not at the next vacuum).

SQLite keeps its btrees.

Revision ID: 0003_event_indexes
Revises: 0002_visibility
Create Date: 2026-12-04 22:00:00

"""
from alembic import op

revision = '0003_event_indexes'
down_revision = '0002_visibility'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_membership_events_member_id', table_name='membership_events')
    op.create_index('ix_membership_events_member_id', 'membership_events', ['member_id'],
                    postgresql_using='hash')
    op.drop_index('ix_membership_events_upload_id', table_name='membership_events')
    op.create_index('ix_membership_events_upload_id', 'membership_events', ['upload_id'],
                    postgresql_using='brin', postgresql_with={'autosummarize': 'on'})


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for column in ('member_id', 'upload_id'):
        op.drop_index(f'ix_membership_events_{column}', table_name='membership_events')
        op.create_index(f'ix_membership_events_{column}', 'membership_events', [column])
