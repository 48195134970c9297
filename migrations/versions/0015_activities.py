"""activities: what members did, for segments on behaviour

- `activities`: member, type, occurred_at, amount (whole ten-thousandths), properties, the
  client's unique external id, source; indexed per member and per type and moment.

Revision ID: 0015_activities
Revises: 0014_attribute_registry
Create Date: 2026-12-06 02:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015_activities'
down_revision = '0014_attribute_registry'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'activities',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('member_id', sa.String(length=36), nullable=False),
        sa.Column('type', sa.String(length=100), nullable=False),
        sa.Column('occurred_at', sa.DateTime(), nullable=False),
        sa.Column('amount_e4', sa.BigInteger(), nullable=True),
        sa.Column('properties', JSONType, nullable=True),
        sa.Column('external_id', sa.String(length=255), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_activities_member_id_members'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_activities')),
        sa.UniqueConstraint('external_id', name=op.f('uq_activities_external_id')),
    )
    op.create_index('ix_activities_member', 'activities', ['member_id', 'type', 'occurred_at'])
    op.create_index('ix_activities_type_time', 'activities', ['type', 'occurred_at', 'member_id'])


def downgrade():
    op.drop_index('ix_activities_type_time', table_name='activities')
    op.drop_index('ix_activities_member', table_name='activities')
    op.drop_table('activities')
