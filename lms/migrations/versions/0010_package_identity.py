"""stable package id for courses; quizzes dropped from a package are retired, not deleted (issue 9.10)

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(sa.Column("package_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_course_package_id", ["package_id"])
    with op.batch_alter_table("quiz", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("quiz", schema=None) as batch_op:
        batch_op.drop_column("retired")
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_constraint("uq_course_package_id", type_="unique")
        batch_op.drop_column("package_id")
