"""quiz attempts own their draw and order; pool/ask; retry wait (issue 9.2)

An attempt is opened with its draw and finished when submitted; answers are committed one per
question (quiz_answer, unique per question: the first one counts). Attempts made before this
revision were finished when made.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("quiz", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ask", sa.Integer(), nullable=True))

    with op.batch_alter_table("quiz_attempt", schema=None) as batch_op:
        batch_op.alter_column("score", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("draw_json", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("open_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_quiz_attempt_open_key"), ["open_key"])
    op.execute("UPDATE quiz_attempt SET finished_at = created_at")

    op.create_table(
        "quiz_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("question_position", sa.Integer(), nullable=False),
        sa.Column("choices_json", sa.Text(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["quiz_attempt.id"],
                                name=op.f("fk_quiz_answer_attempt_id_quiz_attempt")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_answer")),
        sa.UniqueConstraint("attempt_id", "question_position", name="uq_quiz_answer_question"),
    )


def downgrade():
    op.drop_table("quiz_answer")
    op.execute("DELETE FROM quiz_attempt WHERE finished_at IS NULL")  # open attempts never counted
    with op.batch_alter_table("quiz_attempt", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_quiz_attempt_open_key"), type_="unique")
        batch_op.drop_column("open_key")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("draw_json")
        batch_op.alter_column("score", existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table("quiz", schema=None) as batch_op:
        batch_op.drop_column("ask")
