"""知识竞赛 (issue 14)

`contest` (window in naive UTC, draw size, seconds per question, attempts per day, first/best, 学时
and the minimum score for them) with its audiences, units and courses (the question pool);
`contest_attempt` one sitting (its draw, unique per person, contest, Shanghai day and its number that
day: the daily limit held by the database); `contest_answer` each question as served and answered.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "contest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("question_count", sa.Integer(), nullable=False),
        sa.Column("seconds_per_question", sa.Integer(), nullable=False),
        sa.Column("attempts_per_day", sa.Integer(), nullable=False),
        sa.Column("score_rule", sa.String(length=10), nullable=False),
        sa.Column("hours", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("min_score", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("score_rule IN ('first', 'best')", name=op.f("ck_contest_score_rule_known")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_contest_window_order")),
        sa.CheckConstraint("question_count > 0", name=op.f("ck_contest_count_positive")),
        sa.CheckConstraint("seconds_per_question > 0", name=op.f("ck_contest_seconds_positive")),
        sa.CheckConstraint("attempts_per_day > 0", name=op.f("ck_contest_attempts_positive")),
        sa.CheckConstraint("hours >= 0 AND hours <= 8", name=op.f("ck_contest_hours_range")),
        sa.CheckConstraint("min_score >= 0 AND min_score <= 100", name=op.f("ck_contest_min_score_range")),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_contest_created_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contest")),
    )
    with op.batch_alter_table("contest", schema=None) as batch_op:
        batch_op.create_index("ix_contest_window", ["starts_at", "ends_at"], unique=False)
    op.create_table(
        "contest_audience",
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(["contest_id"], ["contest.id"], name=op.f("fk_contest_audience_contest_id_contest")),
        sa.PrimaryKeyConstraint("contest_id", "audience", name=op.f("pk_contest_audience")),
    )
    op.create_table(
        "contest_unit",
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contest_id"], ["contest.id"], name=op.f("fk_contest_unit_contest_id_contest")),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_contest_unit_unit_id_unit")),
        sa.PrimaryKeyConstraint("contest_id", "unit_id", name=op.f("pk_contest_unit")),
    )
    op.create_table(
        "contest_course",
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contest_id"], ["contest.id"], name=op.f("fk_contest_course_contest_id_contest")),
        sa.ForeignKeyConstraint(["course_id"], ["course.id"], name=op.f("fk_contest_course_course_id_course")),
        sa.PrimaryKeyConstraint("contest_id", "course_id", name=op.f("pk_contest_course")),
    )
    op.create_table(
        "contest_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contest_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("day_seq", sa.Integer(), nullable=False),
        sa.Column("draw_json", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("right_count", sa.Integer(), nullable=True),
        sa.Column("score", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("time_ms", sa.Integer(), nullable=True),
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["contest_id"], ["contest.id"], name=op.f("fk_contest_attempt_contest_id_contest")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_contest_attempt_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contest_attempt")),
        sa.UniqueConstraint("contest_id", "user_id", "day", "day_seq", name="uq_contest_attempt_day_seq"),
        sa.UniqueConstraint("open_key", name=op.f("uq_contest_attempt_open_key")),
    )
    with op.batch_alter_table("contest_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_contest_attempt_contest_finished", ["contest_id", "finished_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_contest_attempt_user_id"), ["user_id"], unique=False)
    op.create_table(
        "contest_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("served_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("choices_json", sa.Text(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["attempt_id"], ["contest_attempt.id"],
                                name=op.f("fk_contest_answer_attempt_id_contest_attempt")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contest_answer")),
        sa.UniqueConstraint("attempt_id", "position", name="uq_contest_answer_attempt_position"),
    )


def downgrade():
    # 学时 credited by contests stay in the ledger (append-only); only the contest tables go.
    op.drop_table("contest_answer")
    with op.batch_alter_table("contest_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contest_attempt_user_id"))
        batch_op.drop_index("ix_contest_attempt_contest_finished")
    op.drop_table("contest_attempt")
    op.drop_table("contest_course")
    op.drop_table("contest_unit")
    op.drop_table("contest_audience")
    with op.batch_alter_table("contest", schema=None) as batch_op:
        batch_op.drop_index("ix_contest_window")
    op.drop_table("contest")
