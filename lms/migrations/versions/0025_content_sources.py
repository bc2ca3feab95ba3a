"""package sources per course and lesson (issue 13)

Revision ID: 0025
Revises: 0024
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("course") as batch:
        batch.add_column(sa.Column("sources", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("course") as batch:
        batch.drop_column("sources")
