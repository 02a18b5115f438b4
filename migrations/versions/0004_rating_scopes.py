"""Rating scopes: a blind evaluation set collects judgements of its own (rating.eval_set_id), and one item's
ratings are found by an index that leads with item_id.

The one current rating per (distractor, rater) stays for preference rating (a partial unique index where
eval_set_id is empty); within an evaluation set it is one per (distractor, rater, set).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PREFERENCE = sa.text("eval_set_id IS NULL")
EVALUATION = sa.text("eval_set_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.add_column(sa.Column('eval_set_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_rating_eval_set_id', 'eval_set', ['eval_set_id'], ['id'])
        batch_op.drop_constraint('uq_rating', type_='unique')
        batch_op.create_index('ix_rating_item', ['item_id', 'rater_id'], unique=False)
    op.create_index('uq_rating_preference', 'rating', ['distractor_id', 'rater_id'], unique=True,
                    sqlite_where=PREFERENCE, postgresql_where=PREFERENCE)
    op.create_index('uq_rating_evaluation', 'rating', ['distractor_id', 'rater_id', 'eval_set_id'], unique=True,
                    sqlite_where=EVALUATION, postgresql_where=EVALUATION)


def downgrade() -> None:
    op.drop_index('uq_rating_evaluation', table_name='rating')
    op.drop_index('uq_rating_preference', table_name='rating')
    op.execute("DELETE FROM rating_history WHERE rating_id IN (SELECT id FROM rating WHERE eval_set_id IS NOT NULL)")
    op.execute("DELETE FROM rating WHERE eval_set_id IS NOT NULL")
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.drop_index('ix_rating_item')
        batch_op.create_unique_constraint('uq_rating', ['distractor_id', 'rater_id'])
        batch_op.drop_constraint('fk_rating_eval_set_id', type_='foreignkey')
        batch_op.drop_column('eval_set_id')
