"""course authors; indexes for the /media/ permission lookup (issue 9.3, 9.11)

Course authors are the instructors who may replace a course's videos. The indexes let /media/ find
the asset a file belongs to in one query.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "course_author",
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["course.id"], name=op.f("fk_course_author_course_id_course")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_course_author_user_id_user")),
        sa.PrimaryKeyConstraint("course_id", "user_id", name=op.f("pk_course_author")),
    )
    with op.batch_alter_table("course_author", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_course_author_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("video_asset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_video_asset_poster_path"), ["poster_path"], unique=False)
        batch_op.create_index(batch_op.f("ix_video_asset_captions_path"), ["captions_path"], unique=False)
    with op.batch_alter_table("lesson", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lesson_video_id"), ["video_id"], unique=False)


def downgrade():
    with op.batch_alter_table("lesson", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesson_video_id"))
    with op.batch_alter_table("video_asset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_video_asset_captions_path"))
        batch_op.drop_index(batch_op.f("ix_video_asset_poster_path"))
    with op.batch_alter_table("course_author", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_course_author_user_id"))
    op.drop_table("course_author")
