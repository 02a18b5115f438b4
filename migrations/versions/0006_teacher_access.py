"""Teachers' access links for the browser screen (rater serve): token hashes only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('teacher_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rater_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['rater_id'], ['rater.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_sha256')
    )
    with op.batch_alter_table('teacher_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teacher_access_rater_id'), ['rater_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('teacher_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teacher_access_rater_id'))
    op.drop_table('teacher_access')
