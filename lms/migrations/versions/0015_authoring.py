"""course authoring and versions (issue 10)

A course gets its 学时 rule (video-length tiers, or fixed hours with a note saying why), a cover picture
and a version of its crediting rules; course_version keeps each version's rules (credit hours, watch
threshold, strict, the lessons it requires). A progress row records the course version it was made
under (a learner's first one fixes the rules they are credited by), and a ledger record the version it
was credited under. A video asset may be made from a slide script written in the browser.

Existing courses start at version 1 with their present rules, and existing progress rows under it.
Existing ledger records keep course_version NULL (credited before versions: version 1) — the ledger's
triggers refuse any UPDATE of it, rightly.

Revision ID: 0015
Revises: 0014
"""
import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credit_rule", sa.String(length=10), nullable=False, server_default="fixed"))
        batch_op.add_column(sa.Column("credit_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("cover_path", sa.String(length=200), nullable=True))
    op.create_table(
        "course_version",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("credit_hours", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("watch_threshold", sa.Float(), nullable=False),
        sa.Column("strict", sa.Boolean(), nullable=False),
        sa.Column("lesson_ids_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["course.id"], name=op.f("fk_course_version_course_id_course")),
        sa.PrimaryKeyConstraint("course_id", "version", name=op.f("pk_course_version")),
    )
    with op.batch_alter_table("video_asset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slide_script", sa.Text(), nullable=True))
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("course_version", sa.Integer(), nullable=True))
        batch_op.create_index("ix_lesson_progress_lesson_version", ["lesson_id", "course_version"], unique=False)
    # a plain ADD COLUMN (no table rebuild), so the ledger's append-only triggers stay in place
    with op.batch_alter_table("training_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("course_version", sa.Integer(), nullable=True))

    bind = op.get_bind()
    bind.execute(sa.text("UPDATE lesson_progress SET course_version = 1"))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    courses = bind.execute(sa.text("SELECT id, credit_hours, watch_threshold, strict FROM course")).all()
    for course_id, hours, threshold, strict in courses:
        lessons = [row[0] for row in bind.execute(sa.text(
            "SELECT id FROM lesson WHERE course_id = :c AND NOT retired ORDER BY position, id"), {"c": course_id})]
        bind.execute(sa.text(
            "INSERT INTO course_version (course_id, version, credit_hours, watch_threshold, strict, lesson_ids_json,"
            " created_at) VALUES (:c, 1, :h, :t, :s, :l, :n)"),
            {"c": course_id, "h": hours, "t": threshold, "s": bool(strict), "l": json.dumps(sorted(lessons)), "n": now})


def downgrade():
    # ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35), not a batch rebuild, which would drop the ledger's triggers
    op.drop_column("training_record", "course_version")
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.drop_index("ix_lesson_progress_lesson_version")
        batch_op.drop_column("course_version")
    with op.batch_alter_table("video_asset", schema=None) as batch_op:
        batch_op.drop_column("slide_script")
    op.drop_table("course_version")
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_column("cover_path")
        batch_op.drop_column("version")
        batch_op.drop_column("credit_note")
        batch_op.drop_column("credit_rule")
