"""The media domain's model: a video and its renditions.

Lessons point at a VideoAsset (lms/courses/models.py: Lesson.video); nothing here knows about
lessons beyond the foreign key of the lesson an upload is meant for.
"""
import json

from lms.accounts.models import utcnow
from lms.extensions import db


class VideoAsset(db.Model):
    """A video and its renditions. Playable only when status == 'ready'."""

    __tablename__ = "video_asset"

    id = db.Column(db.Integer, primary_key=True)
    # The lesson this upload is for; it replaces lesson.video only once it is ready (lms/courses/videos.py).
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id", use_alter=True), index=True)
    status = db.Column(db.String(20), nullable=False, default="pending")  # pending/processing/ready/failed
    original_name = db.Column(db.String(255))
    width = db.Column(db.Integer)
    height = db.Column(db.Integer)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    source_path = db.Column(db.String(500))
    source_sha256 = db.Column(db.String(64))
    duration = db.Column(db.Float)
    renditions_json = db.Column(db.Text, nullable=False, default="{}")  # {"360p": "videos/12/360p.mp4"}
    # Indexed: /media/ finds the asset a file belongs to in one query (renditions lie beside the poster).
    poster_path = db.Column(db.String(500), index=True)
    captions_path = db.Column(db.String(500), index=True)
    progress = db.Column(db.Integer, nullable=False, default=0)
    error = db.Column(db.Text)
    # The slide script (YAML, as slides.yaml in a package) the video is rendered from: written in the
    # browser (the job renders it, then transcodes the render: lms/media/services.py run_asset), or
    # kept by an import, so that an export writes the script again rather than the render.
    slide_script = db.Column(db.Text)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    @property
    def renditions(self) -> dict:
        return json.loads(self.renditions_json or "{}")

    @renditions.setter
    def renditions(self, value: dict) -> None:
        self.renditions_json = json.dumps(value, sort_keys=True)

    @property
    def ready(self) -> bool:
        return self.status == "ready"
