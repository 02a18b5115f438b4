"""The teachers' ratings summed per teacher and item and per item and source, kept by every save, so the organizer's
status of a large study reads the sums instead of every rating (rater/store/tally.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# A study under way: its sums now, by the rule of rater.store.tally (teachers only; the other teachers' labels of the
# same distractors beside each teacher's own).
TEACHER_TALLY = """
INSERT INTO teacher_tally (scope, item_id, rater_id, rated, accepted, seconds, beyond, updated_at,
                           agree_accept, accept_reject, reject_accept, agree_reject)
SELECT COALESCE(r.eval_set_id, 0), r.item_id, r.rater_id, count(*), sum(CASE WHEN r.accepted THEN 1 ELSE 0 END),
       max(r.seconds), sum(CASE WHEN r.beyond_k THEN 1 ELSE 0 END), max(r.updated_at),
       sum(CASE WHEN r.accepted THEN l.a - 1 ELSE 0 END), sum(CASE WHEN r.accepted THEN l.n - l.a ELSE 0 END),
       sum(CASE WHEN r.accepted THEN 0 ELSE l.a END), sum(CASE WHEN r.accepted THEN 0 ELSE l.n - l.a - 1 END)
FROM rating r
JOIN rater t ON t.id = r.rater_id
JOIN (SELECT o.distractor_id, COALESCE(o.eval_set_id, 0) AS scope, count(*) AS n,
             sum(CASE WHEN o.accepted THEN 1 ELSE 0 END) AS a
      FROM rating o JOIN rater h ON h.id = o.rater_id WHERE h.kind = 'human'
      GROUP BY o.distractor_id, COALESCE(o.eval_set_id, 0)) l
  ON l.distractor_id = r.distractor_id AND l.scope = COALESCE(r.eval_set_id, 0)
WHERE t.kind = 'human'
GROUP BY COALESCE(r.eval_set_id, 0), r.item_id, r.rater_id
"""
SOURCE_TALLY = """
INSERT INTO source_tally (scope, item_id, source, rated, accepted)
SELECT COALESCE(r.eval_set_id, 0), r.item_id, d.source, count(*), sum(CASE WHEN r.accepted THEN 1 ELSE 0 END)
FROM rating r JOIN rater t ON t.id = r.rater_id JOIN distractor d ON d.id = r.distractor_id
WHERE t.kind = 'human'
GROUP BY COALESCE(r.eval_set_id, 0), r.item_id, d.source
"""


def upgrade() -> None:
    op.create_table(
        'teacher_tally',
        sa.Column('scope', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('rater_id', sa.Integer(), nullable=False),
        sa.Column('rated', sa.Integer(), nullable=False),
        sa.Column('accepted', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.Column('beyond', sa.Integer(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('agree_accept', sa.Integer(), nullable=False),
        sa.Column('accept_reject', sa.Integer(), nullable=False),
        sa.Column('reject_accept', sa.Integer(), nullable=False),
        sa.Column('agree_reject', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['item.id']),
        sa.ForeignKeyConstraint(['rater_id'], ['rater.id']),
        sa.PrimaryKeyConstraint('scope', 'item_id', 'rater_id'),
    )
    op.create_table(
        'source_tally',
        sa.Column('scope', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('rated', sa.Integer(), nullable=False),
        sa.Column('accepted', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['item.id']),
        sa.PrimaryKeyConstraint('scope', 'item_id', 'source'),
    )
    op.execute(sa.text(TEACHER_TALLY))
    op.execute(sa.text(SOURCE_TALLY))


def downgrade() -> None:
    op.drop_table('source_tally')
    op.drop_table('teacher_tally')
