"""Core schema: contexts, items, distractors, raters, ratings and evaluation sets.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('context',
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    op.create_table('eval_set',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('rater',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('settings', sa.Text(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('item',
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('split', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('dataset', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('record', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('context_id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['context_id'], ['context.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_item_key')
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_context_id'), ['context_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_dataset'), ['dataset'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_split'), ['split'], unique=False)

    op.create_table('distractor',
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'source', 'key', name='uq_distractor')
    )
    with op.batch_alter_table('distractor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_distractor_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_distractor_item_source', ['item_id', 'source'], unique=False)
        batch_op.create_index(batch_op.f('ix_distractor_source'), ['source'], unique=False)

    op.create_table('eval_slot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('eval_set_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('distractor_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['distractor_id'], ['distractor.id'], ),
    sa.ForeignKeyConstraint(['eval_set_id'], ['eval_set.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('eval_set_id', 'position', 'slot', name='uq_eval_slot')
    )
    with op.batch_alter_table('eval_slot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_slot_eval_set_id'), ['eval_set_id'], unique=False)

    op.create_table('rating',
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('limit', sa.Float(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('distractor_id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['distractor_id'], ['distractor.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['rater_id'], ['rater.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('distractor_id', 'rater_id', name='uq_rating')
    )
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_rater_id'), ['rater_id'], unique=False)
        batch_op.create_index('ix_rating_rater_item', ['rater_id', 'item_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.drop_index('ix_rating_rater_item')
        batch_op.drop_index(batch_op.f('ix_rating_rater_id'))

    op.drop_table('rating')
    with op.batch_alter_table('eval_slot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_slot_eval_set_id'))

    op.drop_table('eval_slot')
    with op.batch_alter_table('distractor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_distractor_source'))
        batch_op.drop_index('ix_distractor_item_source')
        batch_op.drop_index(batch_op.f('ix_distractor_item_id'))

    op.drop_table('distractor')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_split'))
        batch_op.drop_index(batch_op.f('ix_item_dataset'))
        batch_op.drop_index(batch_op.f('ix_item_context_id'))

    op.drop_table('item')
    op.drop_table('rater')
    op.drop_table('eval_set')
    op.drop_table('context')
