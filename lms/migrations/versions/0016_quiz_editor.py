"""quiz editor (issue 10): questions keep their identity, get a display order and can be retired

`position` stays what attempts store their draw and answers by; `sort_order` is where the editor puts
a question; `retired` keeps a question that learners answered after it was changed or removed. A
question's position is unique within its quiz, so two editors cannot give one number to two questions.

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
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sort_order", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE question SET sort_order = position")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.alter_column("sort_order", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint("uq_question_quiz_position", ["quiz_id", "position"])


def downgrade():
    # Retired questions go with the columns: attempts that answered them show what is left.
    op.execute("DELETE FROM choice WHERE question_id IN (SELECT id FROM question WHERE retired)")
    op.execute("DELETE FROM question WHERE retired")
    with op.batch_alter_table("question", schema=None) as batch_op:
        batch_op.drop_constraint("uq_question_quiz_position", type_="unique")
        batch_op.drop_column("retired")
        batch_op.drop_column("sort_order")
