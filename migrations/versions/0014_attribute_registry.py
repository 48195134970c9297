"""attribute registry: declared custom fields of members

- `attribute_definitions`: key (unique), JSON type, allowed values, description, example.

Revision ID: 0014_attribute_registry
Revises: 0011_accounts
Create Date: 2026-12-05 22:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0014_attribute_registry'
down_revision = '0011_accounts'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'attribute_definitions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('allowed_values', JSONType, nullable=True),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('example', JSONType, nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('updated_by_label', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_attribute_definitions'),
        sa.UniqueConstraint('key', name='uq_attribute_definitions_key'),
        sqlite_autoincrement=True,
    )


def downgrade():
    op.drop_table('attribute_definitions')
