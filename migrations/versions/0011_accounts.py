"""accounts: admin-made password-reset links and TOTP two-factor sign-in

- `password_resets`: one-time reset links, stored as SHA-256 hashes, with an expiry.
- `recovery_codes`: one-time two-factor recovery codes, stored as SHA-256 hashes.
- `users.totp_secret`, `users.totp_enabled_at`, `users.totp_last_step`: the TOTP secret,
  when two-factor sign-in was switched on, and the last accepted time step (no replays).
  Plain ADD COLUMN: no copy of `users` on SQLite.

Revision ID: 0011_accounts
Revises: 0010_organise
Create Date: 2026-12-05 20:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0011_accounts'
down_revision = '0010_organise'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('totp_secret', sa.String(length=64), nullable=True))
    op.add_column('users', sa.Column('totp_enabled_at', sa.DateTime(), nullable=True))
    op.add_column('users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table(
        'password_resets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by_label', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name='fk_password_resets_user_id_users', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_password_resets'),
        sa.UniqueConstraint('token_hash', name='uq_password_resets_token_hash'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_password_resets_user_id', 'password_resets', ['user_id'])
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name='fk_recovery_codes_user_id_users', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_recovery_codes'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_recovery_codes_user_id', 'recovery_codes', ['user_id'])


def downgrade():
    op.drop_index('ix_recovery_codes_user_id', table_name='recovery_codes')
    op.drop_table('recovery_codes')
    op.drop_index('ix_password_resets_user_id', table_name='password_resets')
    op.drop_table('password_resets')
    # Plain DROP COLUMN (SQLite 3.35+): no copy of `users`.
    op.drop_column('users', 'totp_last_step')
    op.drop_column('users', 'totp_enabled_at')
    op.drop_column('users', 'totp_secret')
