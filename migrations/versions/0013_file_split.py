"""The split each item came with from its file, kept apart from its current split, so excluding an item for its
length (`rater split`) no longer loses it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_split', sa.String(length=16), nullable=True))
    # The best knowledge there is for items already in: the split they have now (an excluded item's is lost).
    op.execute(sa.text("UPDATE item SET file_split = split WHERE split IN ('train', 'dev', 'test')"))


def downgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('file_split')
