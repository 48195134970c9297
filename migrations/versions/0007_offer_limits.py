"""offer limits, activations, fulfillments and reward redemptions

- offers gain `requires_activation` and `must_fulfill_within_days`;
- `offer_limits`: global/membership activation and award-count limits (part of the
  visibility catalog: the catalog version triggers of 0002 cover it);
- `offer_activations`, `offer_fulfillments`: what members did with offers;
- `offer_usage`: per-offer counts over all members (the global limits read them; written
  under the offer's lock with each activation and fulfillment);
- `reward_redemptions`: points spent on rewards, refunded by a cancel.

The activity tables are not catalog: the per-member answer cache keys on a member's own
activity and on the usage counts of the globally limited offers instead.

Revision ID: 0007_offer_limits
Revises: 0003_event_indexes
Create Date: 2026-12-05 19:40:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = '0007_offer_limits'
down_revision = '0006_hardening_security'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def _catalog_triggers(table: str) -> None:
    """The same catalog version triggers as migration 0002 installs, for one more table."""
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        bump = "UPDATE catalog_version SET token = lower(hex(randomblob(16)));"
        for event, when in (("ins", "INSERT"), ("del", "DELETE"), ("upd", "UPDATE")):
            op.execute(f"CREATE TRIGGER catalog_version_{table}_{event} AFTER {when} ON "
                       f"{table} BEGIN {bump} END")
    elif dialect == 'postgresql':
        op.execute(f"CREATE TRIGGER catalog_version_{table} AFTER INSERT OR DELETE OR UPDATE "
                   f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION beacon_catalog_changed()")
        op.execute(f"CREATE TRIGGER catalog_version_{table}_truncate AFTER TRUNCATE ON "
                   f"{table} FOR EACH STATEMENT EXECUTE FUNCTION beacon_catalog_changed()")
    else:
        raise RuntimeError(f"Beacon runs on SQLite or PostgreSQL, not {dialect}")


def upgrade():
    # plain ADD COLUMN (no batch copy on SQLite, which would drop the catalog triggers)
    op.add_column('offers', sa.Column('requires_activation', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.add_column('offers', sa.Column('must_fulfill_within_days', sa.Integer(),
                                      nullable=True))

    op.create_table(
        'offer_limits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('offer_id', sa.Integer(), nullable=False),
        sa.Column('limit_type', sa.String(length=32), nullable=False),
        sa.Column('configuration', JSON, nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['offer_id'], ['offers.id'],
                                name=op.f('fk_offer_limits_offer_id_offers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_offer_limits')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_offer_limits_offer_id'), 'offer_limits', ['offer_id'])

    op.create_table(
        'offer_activations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('offer_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.String(length=36), nullable=False),
        sa.Column('activated_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('fulfilled_at', sa.DateTime(), nullable=True),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_offer_activations_member_id_members'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['offer_id'], ['offers.id'],
                                name=op.f('fk_offer_activations_offer_id_offers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_offer_activations')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_offer_activations_member', 'offer_activations',
                    ['member_id', 'offer_id'])
    op.create_index('ix_offer_activations_offer', 'offer_activations', ['offer_id'])

    op.create_table(
        'offer_fulfillments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('offer_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.String(length=36), nullable=False),
        sa.Column('external_id', sa.String(length=255), nullable=True),
        sa.Column('activation_id', sa.Integer(), nullable=True),
        sa.Column('fulfilled_at', sa.DateTime(), nullable=False),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['activation_id'], ['offer_activations.id'],
                                name=op.f('fk_offer_fulfillments_activation_id_offer_activations'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_offer_fulfillments_member_id_members'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['offer_id'], ['offers.id'],
                                name=op.f('fk_offer_fulfillments_offer_id_offers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_offer_fulfillments')),
        sa.UniqueConstraint('offer_id', 'external_id', name='uq_offer_fulfillments_external'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_offer_fulfillments_member', 'offer_fulfillments',
                    ['member_id', 'offer_id'])

    op.create_table(
        'offer_usage',
        sa.Column('offer_id', sa.Integer(), nullable=False),
        sa.Column('activations', sa.BigInteger(), nullable=False),
        sa.Column('awards', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['offer_id'], ['offers.id'],
                                name=op.f('fk_offer_usage_offer_id_offers'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('offer_id', name=op.f('pk_offer_usage')),
    )

    op.create_table(
        'reward_redemptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reward_id', sa.Integer(), nullable=True),
        sa.Column('reward_name', sa.String(length=200), nullable=False),
        sa.Column('member_id', sa.String(length=36), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('external_id', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_reward_redemptions_member_id_members'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'],
                                name=op.f('fk_reward_redemptions_reward_id_rewards'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_redemptions')),
        sa.UniqueConstraint('external_id', name=op.f('uq_reward_redemptions_external_id')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_reward_redemptions_member', 'reward_redemptions',
                    ['member_id', 'reward_id'])
    op.create_index('ix_reward_redemptions_reward', 'reward_redemptions', ['reward_id'])

    _catalog_triggers('offer_limits')


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for event in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER IF EXISTS catalog_version_offer_limits_{event}")
    else:
        op.execute("DROP TRIGGER IF EXISTS catalog_version_offer_limits ON offer_limits")
        op.execute("DROP TRIGGER IF EXISTS catalog_version_offer_limits_truncate "
                   "ON offer_limits")
    op.drop_table('reward_redemptions')
    op.drop_table('offer_usage')
    op.drop_table('offer_fulfillments')
    op.drop_table('offer_activations')
    op.drop_table('offer_limits')
    op.drop_column('offers', 'must_fulfill_within_days')
    op.drop_column('offers', 'requires_activation')
