"""offline activities and their attendance (issue 11)

`offline_activity` is a 线下科普活动 (time window in naive UTC, a unit, 学时 per attendance);
`activity_audience` its audiences; `activity_attendance` who attended, each row pointing at the one
ledger record that credited it.

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

KIND_CODES = ("lecture", "caravan", "field_class", "drill", "exhibition", "other")


def upgrade():
    op.create_table(
        "offline_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(f"kind IN {KIND_CODES!r}", name=op.f("ck_offline_activity_kind_known")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_offline_activity_window_order")),
        sa.CheckConstraint("hours > 0 AND hours <= 8", name=op.f("ck_offline_activity_hours_range")),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_offline_activity_created_by_id_user")),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_offline_activity_unit_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offline_activity")),
    )
    with op.batch_alter_table("offline_activity", schema=None) as batch_op:
        batch_op.create_index("ix_offline_activity_starts_at", ["starts_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_offline_activity_unit_id"), ["unit_id"], unique=False)
    op.create_table(
        "activity_audience",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["activity_id"], ["offline_activity.id"],
                                name=op.f("fk_activity_audience_activity_id_offline_activity")),
        sa.PrimaryKeyConstraint("activity_id", "audience", name=op.f("pk_activity_audience")),
    )
    op.create_table(
        "activity_attendance",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["activity_id"], ["offline_activity.id"],
                                name=op.f("fk_activity_attendance_activity_id_offline_activity")),
        sa.ForeignKeyConstraint(["record_id"], ["training_record.id"],
                                name=op.f("fk_activity_attendance_record_id_training_record")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_activity_attendance_user_id_user")),
        sa.PrimaryKeyConstraint("activity_id", "user_id", name=op.f("pk_activity_attendance")),
        sa.UniqueConstraint("record_id", name=op.f("uq_activity_attendance_record_id")),
    )


def downgrade():
    # The ledger records of attendances stay (append-only); only the activity tables go.
    op.drop_table("activity_attendance")
    op.drop_table("activity_audience")
    with op.batch_alter_table("offline_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offline_activity_unit_id"))
        batch_op.drop_index("ix_offline_activity_starts_at")
    op.drop_table("offline_activity")
