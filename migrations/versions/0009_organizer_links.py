"""An organizer's link: opens the study's status page (/study), never a rating page.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('teacher_access', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organizer', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('teacher_access', schema=None) as batch_op:
        batch_op.drop_column('organizer')
