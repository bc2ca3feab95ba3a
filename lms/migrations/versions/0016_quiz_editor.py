"""quiz editor (issue 10): questions keep their identity, get a display order and can be retired;
answers are tallied for the per-question statistics

`position` stays what attempts store their draw and answers by; `sort_order` is where the editor puts
a question; `retired` keeps a question that learners answered after it was changed or removed. A
question's position is unique within its quiz, so two editors cannot give one number to two questions.
`answer_tally` counts submitted answers per question and choice set, `score_tally` submitted attempts
per score (both filled here from what was submitted so far; lms/quizzes/stats.py counts new ones).

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "answer_tally",
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("question_position", sa.Integer(), nullable=False),
        sa.Column("choices_json", sa.String(length=200), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["quiz_id"], ["quiz.id"], name=op.f("fk_answer_tally_quiz_id_quiz")),
        sa.PrimaryKeyConstraint("quiz_id", "question_position", "choices_json", "correct", name=op.f("pk_answer_tally")),
    )
    # the answers of every attempt submitted so far (lms/quizzes/stats.py counts new ones as they come)
    op.execute("INSERT INTO answer_tally (quiz_id, question_position, choices_json, correct, answers) "
               "SELECT a.quiz_id, qa.question_position, qa.choices_json, qa.correct, count(*) "
               "FROM quiz_answer qa JOIN quiz_attempt a ON a.id = qa.attempt_id WHERE a.finished_at IS NOT NULL "
               "GROUP BY a.quiz_id, qa.question_position, qa.choices_json, qa.correct")
    op.create_table(
        "score_tally",
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["quiz_id"], ["quiz.id"], name=op.f("fk_score_tally_quiz_id_quiz")),
        sa.PrimaryKeyConstraint("quiz_id", "score", "passed", name=op.f("pk_score_tally")),
    )
    op.execute("INSERT INTO score_tally (quiz_id, score, passed, attempts) "
               "SELECT quiz_id, score, passed, count(*) FROM quiz_attempt WHERE finished_at IS NOT NULL "
               "GROUP BY quiz_id, score, passed")

    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sort_order", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE question SET sort_order = position")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.alter_column("sort_order", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint("uq_question_quiz_position", ["quiz_id", "position"])


def downgrade():
    op.drop_table("score_tally")
    op.drop_table("answer_tally")
    # Retired questions go with the columns: attempts that answered them show what is left.
    op.execute("DELETE FROM choice WHERE question_id IN (SELECT id FROM question WHERE retired)")
    op.execute("DELETE FROM question WHERE retired")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_constraint("uq_question_quiz_position", type_="unique")
        batch_op.drop_column("retired")
        batch_op.drop_column("sort_order")
