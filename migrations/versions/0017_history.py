"""row history: every version of members and of the catalog, for as-of decisions

- `row_history`: one row per insert, update and delete of a member, an override, a segment
  definition, an offer, an audience, an offer limit, a reward and a reward's required
  segment, with the row
  as it became (null for a delete) and the moment it changed (the database's clock at the
  statement). Written by triggers in the same transaction, so every writer counts (ORM
  flushes, Core bulk statements, hand-written SQL).
- `history_meta`: when the history begins (the rows present now are recorded as of now).
- indexes on offer_activations (offer_id, activated_at) and offer_fulfillments (offer_id,
  fulfilled_at): the global counts of an offer as of a past moment, read from the index alone.

Revision ID: 0017_history
Revises: 0016_activity_imports
Create Date: 2026-12-06 02:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0017_history'
down_revision = '0016_activity_imports'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')

# table -> (key expression over NEW/OLD as {r}, the columns whose update is a new version, or
# None for any column)
TRACKED = {
    'members': ("{r}.id", None),
    'segments': ("CAST({r}.id AS TEXT)", ('name', 'kind', 'include', 'exclude')),
    'offers': ("CAST({r}.id AS TEXT)", None),
    'audiences': ("CAST({r}.id AS TEXT)", None),
    'offer_limits': ("CAST({r}.id AS TEXT)", None),
    'rewards': ("CAST({r}.id AS TEXT)", None),
    'reward_required_segments': (
        "CAST({r}.reward_id AS TEXT) || ':' || CAST({r}.segment_id AS TEXT)", None),
    'overrides': ("CAST({r}.id AS TEXT)", None),
}
# the member a row belongs to (kept in its own column, indexed)
MEMBER_OF = {'members': 'id', 'overrides': 'member_id'}
JSON_COLUMNS = {'badges', 'custom_fields', 'include', 'exclude', 'configuration', 'metadata'}


def _columns(table):
    return [c['name'] for c in sa.inspect(op.get_bind()).get_columns(table)]


def _sqlite_row(table, r):
    parts = []
    for name in _columns(table):
        value = f"json({r}.{name})" if name in JSON_COLUMNS else f"{r}.{name}"
        parts.append(f"'{name}', {value}")
    return f"json_object({', '.join(parts)})"


def _sqlite_triggers():
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    for table, (key, columns) in TRACKED.items():
        member = f"NEW.{MEMBER_OF[table]}" if table in MEMBER_OF else "NULL"
        old_member = f"OLD.{MEMBER_OF[table]}" if table in MEMBER_OF else "NULL"
        of = f" OF {', '.join(columns)}" if columns else ""
        insert = ("INSERT INTO row_history (table_name, row_key, member_id, op, data, "
                  "changed_at) VALUES ")
        op.execute(
            f"CREATE TRIGGER row_history_{table}_ins AFTER INSERT ON {table} BEGIN {insert}"
            f"('{table}', {key.format(r='NEW')}, {member}, 'I', {_sqlite_row(table, 'NEW')}, "
            f"{now}); END")
        op.execute(
            f"CREATE TRIGGER row_history_{table}_upd AFTER UPDATE{of} ON {table} BEGIN "
            f"{insert}('{table}', {key.format(r='NEW')}, {member}, 'U', "
            f"{_sqlite_row(table, 'NEW')}, {now}); END")
        op.execute(
            f"CREATE TRIGGER row_history_{table}_del AFTER DELETE ON {table} BEGIN {insert}"
            f"('{table}', {key.format(r='OLD')}, {old_member}, 'D', NULL, {now}); END")


def _postgresql_triggers():
    for table, (key, columns) in TRACKED.items():
        member_new = f"NEW.{MEMBER_OF[table]}" if table in MEMBER_OF else "NULL"
        member_old = f"OLD.{MEMBER_OF[table]}" if table in MEMBER_OF else "NULL"
        op.execute(f"""
            CREATE FUNCTION beacon_row_history_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    INSERT INTO row_history (table_name, row_key, member_id, op, data,
                                             changed_at)
                    VALUES ('{table}', {key.format(r='OLD')}, {member_old}, 'D', NULL,
                            clock_timestamp() AT TIME ZONE 'UTC');
                ELSE
                    INSERT INTO row_history (table_name, row_key, member_id, op, data,
                                             changed_at)
                    VALUES ('{table}', {key.format(r='NEW')}, {member_new},
                            CASE TG_OP WHEN 'INSERT' THEN 'I' ELSE 'U' END, to_jsonb(NEW),
                            clock_timestamp() AT TIME ZONE 'UTC');
                END IF;
                RETURN NULL;
            END $$""")
        of = f" OF {', '.join(columns)}" if columns else ""
        op.execute(f"CREATE TRIGGER row_history_{table} AFTER INSERT OR DELETE OR UPDATE{of} "
                   f"ON {table} FOR EACH ROW EXECUTE FUNCTION beacon_row_history_{table}()")


def _baseline(dialect):
    """The rows present now, as inserts at the start of the history."""
    for table, (key, _columns_) in TRACKED.items():
        member = f"t.{MEMBER_OF[table]}" if table in MEMBER_OF else "NULL"
        if dialect == 'sqlite':
            row, now = _sqlite_row(table, 't'), "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        else:
            row, now = "to_jsonb(t)", "clock_timestamp() AT TIME ZONE 'UTC'"
        op.execute(f"INSERT INTO row_history (table_name, row_key, member_id, op, data, "
                   f"changed_at) SELECT '{table}', {key.format(r='t')}, {member}, 'I', {row}, "
                   f"{now} FROM {table} t")


def upgrade():
    op.create_table(
        'row_history',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('table_name', sa.String(length=40), nullable=False),
        sa.Column('row_key', sa.String(length=80), nullable=False),
        sa.Column('member_id', sa.String(length=36), nullable=True),
        sa.Column('op', sa.String(length=1), nullable=False),
        sa.Column('data', JSONType, nullable=True),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_row_history')),
        sqlite_autoincrement=True,
    )
    # a member's versions (and overrides); a row's versions (the one before a change); a
    # table's versions up to a moment (the catalog then, the changes in a period)
    op.create_index('ix_row_history_member', 'row_history', ['member_id', 'id'])
    op.create_index('ix_row_history_row', 'row_history', ['table_name', 'row_key', 'id'])
    op.create_index('ix_row_history_changed', 'row_history', ['table_name', 'changed_at'])
    op.create_index('ix_offer_activations_offer_at', 'offer_activations',
                    ['offer_id', 'activated_at'])
    op.create_index('ix_offer_fulfillments_offer_at', 'offer_fulfillments',
                    ['offer_id', 'fulfilled_at'])
    op.create_table(
        'history_meta',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('begins_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_history_meta')),
    )
    dialect = op.get_bind().dialect.name
    now = ("strftime('%Y-%m-%d %H:%M:%f', 'now')" if dialect == 'sqlite'
           else "clock_timestamp() AT TIME ZONE 'UTC'")
    op.execute(f"INSERT INTO history_meta (id, begins_at) VALUES (1, {now})")
    _baseline(dialect)
    if dialect == 'sqlite':
        _sqlite_triggers()
    elif dialect == 'postgresql':
        _postgresql_triggers()
    else:
        raise RuntimeError(f"Beacon runs on SQLite or PostgreSQL, not {dialect}")


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in TRACKED:
        if dialect == 'sqlite':
            for event in ("ins", "upd", "del"):
                op.execute(f"DROP TRIGGER IF EXISTS row_history_{table}_{event}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS row_history_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS beacon_row_history_{table}()")
    op.drop_table('history_meta')
    op.drop_index('ix_offer_fulfillments_offer_at', table_name='offer_fulfillments')
    op.drop_index('ix_offer_activations_offer_at', table_name='offer_activations')
    op.drop_index('ix_row_history_changed', table_name='row_history')
    op.drop_index('ix_row_history_row', table_name='row_history')
    op.drop_index('ix_row_history_member', table_name='row_history')
    op.drop_table('row_history')
