"""catalog version: a token every change of the visibility catalog replaces

The visibility loader keeps the catalog (offers, audiences, rewards, required segments and
segment definitions) per process and reloads it only when this token changed. Database
triggers replace the token in the same transaction as any insert, delete or relevant update
of those tables, so ORM flushes, Core bulk statements and hand-written SQL all count. The
token is random rather than a counter: a rolled-back change can never bring back a token
that named other data.

Revision ID: 0002_visibility
Revises: 0001
Create Date: 2026-12-04 19:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0002_visibility'
down_revision = '0001'
branch_labels = None
depends_on = None

# table -> the columns whose update changes the catalog (None: any column)
WATCHED = {
    'offers': None,
    'audiences': None,
    'audience_segments': None,
    'rewards': None,
    'reward_required_segments': None,
    'segments': ('name', 'kind', 'include', 'exclude'),
}


def _sqlite_triggers():
    bump = "UPDATE catalog_version SET token = lower(hex(randomblob(16)));"
    for table, columns in WATCHED.items():
        of = f" OF {', '.join(columns)}" if columns else ""
        for event, when in (("ins", "INSERT"), ("del", "DELETE"), ("upd", f"UPDATE{of}")):
            op.execute(f"CREATE TRIGGER catalog_version_{table}_{event} AFTER {when} ON "
                       f"{table} BEGIN {bump} END")


def _postgresql_triggers():
    op.execute("""
        CREATE FUNCTION beacon_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE catalog_version SET token = md5(random()::text || clock_timestamp()::text
                                                   || txid_current()::text);
            RETURN NULL;
        END $$""")
    for table, columns in WATCHED.items():
        of = f" OF {', '.join(columns)}" if columns else ""
        op.execute(f"CREATE TRIGGER catalog_version_{table} AFTER INSERT OR DELETE OR "
                   f"UPDATE{of} ON {table} FOR EACH STATEMENT "
                   "EXECUTE FUNCTION beacon_catalog_changed()")
        op.execute(f"CREATE TRIGGER catalog_version_{table}_truncate AFTER TRUNCATE ON "
                   f"{table} FOR EACH STATEMENT EXECUTE FUNCTION beacon_catalog_changed()")


def upgrade():
    op.create_table('catalog_version',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('token', sa.String(length=64), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_version')))
    dialect = op.get_bind().dialect.name
    # random from the start too: a database re-created at the same URL gets another token
    random_token = ("lower(hex(randomblob(16)))" if dialect == 'sqlite' else
                    "md5(random()::text || clock_timestamp()::text)")
    op.execute(f"INSERT INTO catalog_version (id, token) VALUES (1, {random_token})")
    if dialect == 'sqlite':
        _sqlite_triggers()
    elif dialect == 'postgresql':
        _postgresql_triggers()
    else:
        raise RuntimeError(f"Beacon runs on SQLite or PostgreSQL, not {dialect}: no catalog "
                           "version triggers for it")


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in WATCHED:
        if dialect == 'sqlite':
            for event in ("ins", "del", "upd"):
                op.execute(f"DROP TRIGGER IF EXISTS catalog_version_{table}_{event}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS catalog_version_{table} ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS catalog_version_{table}_truncate ON {table}")
    if dialect == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS beacon_catalog_changed()")
    op.drop_table('catalog_version')
