"""练一练 practices (issue 15)

practice: a lesson's practice as its package gives it (the normalised document, retired when dropped);
practice_progress: each learner's step in it, wrong taps on that step and when it was finished.

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "practice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesson_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["lesson_id"], ["lesson.id"], name=op.f("fk_practice_lesson_id_lesson")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice")),
        sa.UniqueConstraint("lesson_id", name=op.f("uq_practice_lesson_id")),
    )
    op.create_table(
        "practice_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("wrong", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practice.id"], name=op.f("fk_practice_progress_practice_id_practice")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_practice_progress_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_progress")),
        sa.UniqueConstraint("user_id", "practice_id", name="uq_practice_progress_user_practice"),
    )
    with op.batch_alter_table("practice_progress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practice_progress_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("practice_progress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_progress_user_id"))
    op.drop_table("practice_progress")
    op.drop_table("practice")
