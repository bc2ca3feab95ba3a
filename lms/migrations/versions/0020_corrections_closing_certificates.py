"""corrections, closed years, certificates (issue 11)

Corrections need no schema of their own (training_record already has reverses_id and the unique
completion_key "reversal:<id>"). closed_year holds the current state of each (year, unit) closing, looked
up by year on every credit; year_certificate keeps each yearly 学时证明's code and hours as issued.

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "closed_year",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("closed_by_id", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=False),
        sa.Column("reopened_by_id", sa.Integer(), nullable=True),
        sa.Column("reopened_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_closed_year_unit_id_unit")),
        sa.ForeignKeyConstraint(["closed_by_id"], ["user.id"], name=op.f("fk_closed_year_closed_by_id_user")),
        sa.ForeignKeyConstraint(["reopened_by_id"], ["user.id"], name=op.f("fk_closed_year_reopened_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closed_year")),
        sa.UniqueConstraint("year", "unit_id", name="uq_closed_year_year_unit"),
    )
    op.create_table(
        "year_certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_year_certificate_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_year_certificate")),
        sa.UniqueConstraint("code", name=op.f("uq_year_certificate_code")),
        sa.UniqueConstraint("user_id", "year", name="uq_year_certificate_user_year"),
    )


def downgrade():
    op.drop_table("year_certificate")
    op.drop_table("closed_year")
