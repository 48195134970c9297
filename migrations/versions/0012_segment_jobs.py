"""segment jobs: large rule changes applied in the background (issue 21)

- `segment_jobs`: one row per rule change that moves more members than
  SEGMENT_JOB_THRESHOLD; its status (queued, running, done, failed, interrupted), the
  definition being applied, the estimated counts and how many have moved, timestamps and
  the error. A new table only: nothing else is copied or rewritten.

Revision ID: 0012_segment_jobs
Revises: 0011_accounts
Create Date: 2026-12-05 22:20:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012_segment_jobs'
down_revision = '0011_accounts'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'segment_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('definition', JSON, nullable=False),
        sa.Column('changes', JSON, nullable=False),
        sa.Column('base_version', sa.Integer(), nullable=False),
        sa.Column('to_add', sa.BigInteger(), nullable=False),
        sa.Column('to_remove', sa.BigInteger(), nullable=False),
        sa.Column('done', sa.BigInteger(), nullable=False),
        sa.Column('result', JSON, nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name='fk_segment_jobs_segment_id_segments', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'],
                                name='fk_segment_jobs_actor_id_users', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_segment_jobs'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_segment_jobs_segment_id', 'segment_jobs', ['segment_id'])
    op.create_index('ix_segment_jobs_status', 'segment_jobs', ['status'])


def downgrade():
    op.drop_index('ix_segment_jobs_status', table_name='segment_jobs')
    op.drop_index('ix_segment_jobs_segment_id', table_name='segment_jobs')
    op.drop_table('segment_jobs')
