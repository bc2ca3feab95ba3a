"""exports run as background jobs (issue 11)

`export_job`: one export asked for on the web and written by the worker (lms/records/export_jobs.py):
its requester, filters, format, status and progress, the file under DATA_DIR/exports, and when it
expires.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "export_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("filters_json", sa.Text(), nullable=False),
        sa.Column("fmt", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.Boolean(), nullable=False),
        sa.Column("lang", sa.String(length=5), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["requested_by_id"], ["user.id"], name=op.f("fk_export_job_requested_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_job")),
    )
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_job_requested_by_id"), ["requested_by_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_export_job_status"), ["status"], unique=False)


def downgrade():
    with op.batch_alter_table("export_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_job_status"))
        batch_op.drop_index(batch_op.f("ix_export_job_requested_by_id"))
    op.drop_table("export_job")
