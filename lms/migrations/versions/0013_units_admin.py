"""unit management (issue 10): a unit can be deactivated (it takes nobody new; nothing is deleted), it
records when it was made, and its children are found through an index on parent_id.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(), nullable=False, server_default=sa.func.now()))
        batch_op.create_index(batch_op.f("ix_unit_parent_id"), ["parent_id"], unique=False)


def downgrade():
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_parent_id"))
        batch_op.drop_column("created_at")
        batch_op.drop_column("active")
