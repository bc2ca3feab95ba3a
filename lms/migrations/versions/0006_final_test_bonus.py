"""extra credit for a high end-of-course test score (course.bonus_hours, bonus_min_score)

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bonus_hours", sa.Numeric(precision=6, scale=2), nullable=True))
        batch_op.add_column(sa.Column("bonus_min_score", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_column("bonus_min_score")
        batch_op.drop_column("bonus_hours")
