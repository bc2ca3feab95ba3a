"""科学素质自测 (issue 14)

`assessment_pool` the imported assessment.yaml (its rules); `assessment_item` the items, versioned by key
(an answered item is retired and written anew when it changes); `assessment_sitting` one timed sitting with
its draw, deadline and, once finished, its scores; `assessment_answer` the committed answers, one per item.

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "assessment_pool",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("retake_days", sa.Integer(), nullable=False),
        sa.Column("rules_json", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_pool")),
        sa.UniqueConstraint("package_id", name=op.f("uq_assessment_pool_package_id")),
    )
    op.create_table(
        "assessment_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("benchmark", sa.String(length=100), nullable=False),
        sa.Column("difficulty", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("choices_json", sa.Text(), nullable=False),
        sa.Column("courses_json", sa.Text(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("dimension IN ('knowledge', 'methods', 'thinking', 'application')",
                           name=op.f("ck_assessment_item_dimension_known")),
        sa.CheckConstraint("difficulty BETWEEN 1 AND 3", name=op.f("ck_assessment_item_difficulty_range")),
        sa.ForeignKeyConstraint(["pool_id"], ["assessment_pool.id"],
                                name=op.f("fk_assessment_item_pool_id_assessment_pool")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_item")),
        sa.UniqueConstraint("pool_id", "key", "version", name="uq_assessment_item_version"),
    )
    op.create_table(
        "assessment_sitting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.Column("draw_json", sa.Text(), nullable=False),
        sa.Column("rules_json", sa.Text(), nullable=False),
        sa.Column("scores_json", sa.Text(), nullable=True),
        sa.Column("total", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("qualified", sa.Boolean(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("audience", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(["pool_id"], ["assessment_pool.id"],
                                name=op.f("fk_assessment_sitting_pool_id_assessment_pool")),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_assessment_sitting_unit_id_unit")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_assessment_sitting_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_sitting")),
        sa.UniqueConstraint("open_key", name=op.f("uq_assessment_sitting_open_key")),
    )
    with op.batch_alter_table("assessment_sitting", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessment_sitting_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessment_sitting_finished_at"), ["finished_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_assessment_sitting_unit_id"), ["unit_id"], unique=False)
    op.create_table(
        "assessment_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sitting_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("choices_json", sa.Text(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["assessment_item.id"],
                                name=op.f("fk_assessment_answer_item_id_assessment_item")),
        sa.ForeignKeyConstraint(["sitting_id"], ["assessment_sitting.id"],
                                name=op.f("fk_assessment_answer_sitting_id_assessment_sitting")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_answer")),
        sa.UniqueConstraint("sitting_id", "item_id", name="uq_assessment_answer_item"),
    )


def downgrade():
    op.drop_table("assessment_answer")
    with op.batch_alter_table("assessment_sitting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_sitting_unit_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_sitting_finished_at"))
        batch_op.drop_index(batch_op.f("ix_assessment_sitting_user_id"))
    op.drop_table("assessment_sitting")
    op.drop_table("assessment_item")
    op.drop_table("assessment_pool")
