"""Work shared out with an overlap: leases on open items, the overlap of evaluation sets, and study settings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lease',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('eval_set_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['eval_set_id'], ['eval_set.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['rater_id'], ['rater.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lease', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lease_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lease_rater_id'), ['rater_id'], unique=False)
    op.create_table('study_setting',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('eval_set', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overlap', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('eval_set', schema=None) as batch_op:
        batch_op.drop_column('overlap')
    op.drop_table('study_setting')
    with op.batch_alter_table('lease', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lease_rater_id'))
        batch_op.drop_index(batch_op.f('ix_lease_item_id'))
    op.drop_table('lease')
