"""admin console (issue 10): covering ledger indexes, activity and audit-log indexes

The console sums 学时 by period for the county, a unit subtree or an instructor's courses from covering
indexes of training_record (never its rows), counts who studied this week through the progress
timestamps, and filters the audit log by actor and target.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("training_record") as batch:
        # the single-column indexes are prefixes of the covering ones that replace them
        batch.drop_index("ix_training_record_user_id")
        batch.drop_index("ix_training_record_course_id")
        batch.drop_index("ix_training_record_earned_at")
        batch.create_index("ix_training_record_earned", ["earned_at", "user_id", "hours"])
        batch.create_index("ix_training_record_user_earned", ["user_id", "earned_at", "hours"])
        batch.create_index("ix_training_record_course_kind", ["course_id", "kind", "user_id", "earned_at", "hours"])
    with op.batch_alter_table("lesson_progress") as batch:
        batch.create_index("ix_lesson_progress_last_heartbeat_at", ["last_heartbeat_at"])
        batch.create_index("ix_lesson_progress_read_at", ["read_at"])
    with op.batch_alter_table("audit_log") as batch:
        batch.create_index("ix_audit_log_actor_id", ["actor_id"])
        batch.create_index("ix_audit_log_target", ["target"])


def downgrade():
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_target")
        batch.drop_index("ix_audit_log_actor_id")
    with op.batch_alter_table("lesson_progress") as batch:
        batch.drop_index("ix_lesson_progress_read_at")
        batch.drop_index("ix_lesson_progress_last_heartbeat_at")
    with op.batch_alter_table("training_record") as batch:
        batch.drop_index("ix_training_record_course_kind")
        batch.drop_index("ix_training_record_user_earned")
        batch.drop_index("ix_training_record_earned")
        batch.create_index("ix_training_record_earned_at", ["earned_at"])
        batch.create_index("ix_training_record_course_id", ["course_id"])
        batch.create_index("ix_training_record_user_id", ["user_id"])
