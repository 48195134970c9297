"""activity imports: CSV imports of member activities (dry run, report, apply)

- `activity_imports`: the file, its status and progress, the dry-run or applied report,
  who sent it and when.

Revision ID: 0016_activity_imports
Revises: 0015_activities
Create Date: 2026-12-06 03:00:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016_activity_imports'
down_revision = '0015_activities'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'activity_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('report', JSONType, nullable=False),
        sa.Column('progress', sa.BigInteger(), nullable=False),
        sa.Column('rows', sa.BigInteger(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('stored_path', sa.String(length=1000), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'],
                                name=op.f('fk_activity_imports_actor_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_imports')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_activity_imports_created_at'), 'activity_imports', ['created_at'])


def downgrade():
    op.drop_index(op.f('ix_activity_imports_created_at'), table_name='activity_imports')
    op.drop_table('activity_imports')
