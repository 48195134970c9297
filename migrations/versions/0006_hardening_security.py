"""sessions end on the server; login throttling shared by every process

- users.session_version: the generation of a user's sessions. A session cookie carries the
  generation it was signed in with; signing out, a password change and deactivation raise
  it, so every earlier cookie of that user stops working.
- login_throttles: failed sign-in counters per client address and per account (when Redis
  is not configured), so every web process sees the same counts.
- users.failed_logins and users.locked_until go: the account lock they implemented let
  anyone who knew an email keep its owner locked out.

Revision ID: 0006_hardening_security
Revises: 0003_event_indexes
Create Date: 2026-12-05 19:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0006_hardening_security'
down_revision = '0003_event_indexes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.drop_column('failed_logins')
        batch.drop_column('locked_until')
    op.create_table(
        'login_throttles',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('blocked_until', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttles')),
    )
    op.create_index(op.f('ix_login_throttles_expires_at'), 'login_throttles', ['expires_at'])


def downgrade():
    op.drop_index(op.f('ix_login_throttles_expires_at'), table_name='login_throttles')
    op.drop_table('login_throttles')
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.drop_column('session_version')
