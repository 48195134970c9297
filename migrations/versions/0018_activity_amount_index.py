"""activities: the member index also holds the amount

`ix_activities_member` (member_id, type, occurred_at) becomes (member_id, type, occurred_at,
amount_e4): a sum, minimum or maximum of a member's amounts over a window is then read from the
index alone, without visiting each activity's row (re-evaluating the members of a batch of
10,000 activities against "spent at least 200 in 90 days": 0.84 s -> 0.14 s on PostgreSQL).

Revision ID: 0018_activity_amount_index
Revises: 0017_history
Create Date: 2026-12-06 06:30:00

"""
from alembic import op

revision = '0018_activity_amount_index'
down_revision = '0017_history'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_activities_member', table_name='activities')
    op.create_index('ix_activities_member', 'activities',
                    ['member_id', 'type', 'occurred_at', 'amount_e4'])


def downgrade():
    op.drop_index('ix_activities_member', table_name='activities')
    op.create_index('ix_activities_member', 'activities', ['member_id', 'type', 'occurred_at'])
