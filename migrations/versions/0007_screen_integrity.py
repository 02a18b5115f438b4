"""What a teacher saw and chose: the option's place on screen, the time on item, saves beyond K, and drafts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('rating', 'rating_history'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('shown_position', sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column('seconds', sa.Float(), nullable=True))
            batch_op.add_column(sa.Column('beyond_k', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('marks', sa.Text(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['rater_id'], ['rater.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rater_id', 'item_id', 'scope', name='uq_draft')
    )


def downgrade() -> None:
    op.drop_table('draft')
    for table in ('rating_history', 'rating'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('beyond_k')
            batch_op.drop_column('seconds')
            batch_op.drop_column('shown_position')
