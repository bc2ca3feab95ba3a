"""progress belongs to the video asset it was earned on; reading time; certificate codes (issue 9.3, 9.7)

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("video_asset_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("opened_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("read_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key("fk_lesson_progress_video_asset_id_video_asset", "video_asset",
                                    ["video_asset_id"], ["id"])
    # Progress so far was earned on the lesson's present video (the best that is known).
    op.execute("UPDATE lesson_progress SET video_asset_id = "
               "(SELECT lesson.video_id FROM lesson WHERE lesson.id = lesson_progress.lesson_id)")


def downgrade():
    with op.batch_alter_table("lesson_progress", schema=None) as batch_op:
        batch_op.drop_constraint("fk_lesson_progress_video_asset_id_video_asset", type_="foreignkey")
        batch_op.drop_column("read_at")
        batch_op.drop_column("opened_at")
        batch_op.drop_column("video_asset_id")
