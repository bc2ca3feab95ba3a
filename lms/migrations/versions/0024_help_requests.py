"""请老师帮忙 help requests (issue 15)

help_request: one row per press of 请老师帮忙 on a class tablet. open_key is unique while the request
is open ("user:<id>" or "tablet:<id>") and NULL once it is cleared, cancelled or expired, so a learner
has at most one open request however often they press.

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "help_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("tablet", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("signed_in", sa.Boolean(), nullable=False),
        sa.Column("page_path", sa.String(length=255), nullable=False),
        sa.Column("page_title", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("open_key", sa.String(length=80), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_how", sa.String(length=12), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_help_request_unit_id_unit")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_help_request_user_id_user")),
        sa.ForeignKeyConstraint(["closed_by_id"], ["user.id"], name=op.f("fk_help_request_closed_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_request")),
        sa.UniqueConstraint("open_key", name=op.f("uq_help_request_open_key")),
    )
    op.create_index("ix_help_request_unit_id_created_at", "help_request", ["unit_id", "created_at"])


def downgrade():
    op.drop_index("ix_help_request_unit_id_created_at", table_name="help_request")
    op.drop_table("help_request")
