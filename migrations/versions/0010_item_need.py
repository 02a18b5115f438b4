"""Each item's teachers still needed under the preference study's K, behind a partial index: a claim's cost no
longer grows with the items already finished.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

UNKNOWN = 1_000_000  # rater.store.tables.NEED_UNKNOWN: "count before claiming"


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('need', sa.Integer(), server_default=str(UNKNOWN), nullable=False))
    needed = sa.text('need > 0')
    op.create_index('ix_item_needed', 'item', ['id'], unique=False, sqlite_where=needed, postgresql_where=needed)
    # A study under way: count now, as `Study.recount` does (the same rule: distinct teachers, not beyond K).
    op.execute(sa.text(
        "UPDATE item SET need = (SELECT CAST(s.value AS INTEGER) FROM study_setting s WHERE s.name = 'preference.overlap')"
        " - (SELECT count(DISTINCT r.rater_id) FROM rating r JOIN rater ON rater.id = r.rater_id"
        "    WHERE r.item_id = item.id AND r.eval_set_id IS NULL AND rater.kind = 'human' AND NOT r.beyond_k)"
        " WHERE EXISTS (SELECT 1 FROM study_setting s WHERE s.name = 'preference.overlap')"))
    op.execute(sa.text("UPDATE item SET need = 0 WHERE need < 0"))


def downgrade() -> None:
    op.drop_index('ix_item_needed', table_name='item')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('need')
