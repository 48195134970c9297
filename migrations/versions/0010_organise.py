"""segments: tags, an owner, and archive instead of delete

- `segments.owner_id`: the user responsible for the segment (kept when the user is deleted:
  SET NULL).
- `segments.archived_at` / `archived_by_label`: an archived segment leaves the pickers and
  the default list and cannot be newly used; it keeps its members, events and history.
- `segment_tags`: one row per (segment, tag), indexed by tag for the list's tag filter.

Revision ID: 0010_organise
Revises: 0003_event_indexes
Create Date: 2026-12-05 20:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010_organise'
down_revision = '0007_offer_limits'
branch_labels = None
depends_on = None


def _copy_segments_on_sqlite(change) -> None:
    """Apply `change(batch)` to SQLite's segments table by copying it (batch mode).

    SQLite adds or drops a foreign key only by copying the table. The copy must keep
    AUTOINCREMENT; the catalog triggers of 0002 go with the old table, so they are read first
    and made again on the copy; and dropping the old table with foreign keys on would cascade
    to every membership, override and upload, so they go off (only possible outside a
    transaction) for the copy and on again after.
    """
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        op.execute('PRAGMA foreign_keys=OFF')
    triggers = [row[0] for row in bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'segments'")]
    with op.batch_alter_table('segments', recreate='always',
                              table_kwargs={'sqlite_autoincrement': True}) as batch:
        change(batch)
    for sql in triggers:
        op.execute(sql)
    with op.get_context().autocommit_block():
        op.execute('PRAGMA foreign_keys=ON')


def _add_owner(batch) -> None:
    batch.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
    batch.create_foreign_key('fk_segments_owner_id_users', 'users', ['owner_id'], ['id'],
                             ondelete='SET NULL')


def _drop_owner(batch) -> None:
    batch.drop_constraint('fk_segments_owner_id_users', type_='foreignkey')
    batch.drop_column('owner_id')


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _copy_segments_on_sqlite(_add_owner)
    else:
        with op.batch_alter_table('segments') as batch:
            _add_owner(batch)
    op.add_column('segments', sa.Column('archived_at', sa.DateTime(), nullable=True))
    op.add_column('segments', sa.Column('archived_by_label', sa.String(length=200),
                                        nullable=True))
    op.create_index('ix_segments_owner_id', 'segments', ['owner_id'])
    op.create_index('ix_segments_archived_at', 'segments', ['archived_at'])
    op.create_table(
        'segment_tags',
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name='fk_segment_tags_segment_id_segments', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('segment_id', 'tag', name='pk_segment_tags'),
    )
    op.create_index('ix_segment_tags_tag', 'segment_tags', ['tag'])


def downgrade():
    op.drop_index('ix_segment_tags_tag', table_name='segment_tags')
    op.drop_table('segment_tags')
    op.drop_index('ix_segments_archived_at', table_name='segments')
    op.drop_index('ix_segments_owner_id', table_name='segments')
    op.drop_column('segments', 'archived_by_label')
    op.drop_column('segments', 'archived_at')
    if op.get_bind().dialect.name == 'sqlite':
        _copy_segments_on_sqlite(_drop_owner)
    else:
        with op.batch_alter_table('segments') as batch:
            _drop_owner(batch)
