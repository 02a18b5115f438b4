"""Judge requests: the cache, raw answers, usage and latency of every LLM judge request.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('judge_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('scores', sa.Text(), nullable=True),
    sa.Column('order', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['rater_id'], ['rater.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('judge_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judge_request_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_judge_request_rater_id'), ['rater_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('judge_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_judge_request_rater_id'))
        batch_op.drop_index(batch_op.f('ix_judge_request_key'))

    op.drop_table('judge_request')
