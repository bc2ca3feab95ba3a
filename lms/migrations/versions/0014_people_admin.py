"""people management (issue 10): a phone number to search by, a flag that sends a user to the password
change at their next page (after an administrator's reset or a generated first password), and the
indexes the people list (lms/accounts/people.py) pages and filters with at 50,000 people.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_user_unit_id"), ["unit_id"], unique=False)
        # the list's order and keyset, covering every column it searches and filters by
        batch_op.create_index("ix_user_list", ["full_name", "id", "username", "phone", "unit_id", "audience", "role",
                                               "active", "must_change_password"], unique=False)


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index("ix_user_list")
        batch_op.drop_index(batch_op.f("ix_user_unit_id"))
        batch_op.drop_column("must_change_password")
        batch_op.drop_column("phone")
