"""Course and lesson authoring in the browser: the services behind lms/courses/authoring_routes.py.

Each function checks everything it is given before it changes anything, then makes the change, adds
one audit row per change (lms/records/audit.py) and keeps the course's crediting rules
(lms/courses/rules.py) in the same commit: a refused request leaves nothing half-saved, and editing a
course that learners have started moves it to a new version instead of changing their rules.

Who may call these — an admin, or an instructor who authors the course (lms/courses/authors.py) —
is the routes' check; nothing here reads the request.
"""
from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func

from lms.audiences import AUDIENCE_CODES, audience_label
from lms.courses import rules as course_rules
from lms.courses.markdown import render_markdown
from lms.courses.models import Course, CourseAudience, CourseAuthor, Lesson
from lms.courses.services import state_of
from lms.extensions import db
from lms.media import ffmpeg_tools, slides as slide_tools
from lms.media.models import VideoAsset
from lms.media.services import attach_captions, check_webvtt, uploads_root
from lms.records.audit import audit

MAX_COVER_BYTES = 5 * 1024 * 1024
COVER_SIZE = (640, 360)  # covers are re-encoded to a JPEG that fits: light for a catalogue on a weak link
MAX_TEXT_CHARS = 50_000
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,79}")


class AuthoringError(ValueError):
    """A change refused as a whole; `field` names the form field it is about (None: the form as a whole)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


# ---- courses ----------------------------------------------------------------------------------

@dataclass
class CourseFields:
    title: str
    summary: str
    audiences: list[str]
    mandatory: bool
    strict: bool
    credit_rule: str  # "tiers" | "fixed"
    credit_hours: Decimal | None
    credit_note: str
    watch_threshold: float  # 0.5..1.0
    published: bool = False


def check_fields(fields: CourseFields) -> None:
    """The rules of a course's fields as a whole (each field's own format is the form's)."""
    if not fields.title.strip():
        raise AuthoringError("title", _("请填写课程名称"))
    unknown = [code for code in fields.audiences if code not in AUDIENCE_CODES]
    if not fields.audiences or unknown:
        raise AuthoringError("audiences", _("请至少选择一个面向的人群"))
    if fields.credit_rule not in course_rules.CREDIT_RULES:
        raise AuthoringError("credit_rule", _("请选择学时怎么算"))
    if fields.credit_rule == "fixed":
        if fields.credit_hours is None or not Decimal("0") < fields.credit_hours <= Decimal("100"):
            raise AuthoringError("credit_hours", _("固定学时要大于 0、不超过 100"))
        if not fields.credit_note.strip():
            raise AuthoringError("credit_note", _("固定学时请写明依据（例如线下同类课程的课时），管理员审核时会看到"))
    if not 0.5 <= fields.watch_threshold <= 1.0:
        raise AuthoringError("watch_threshold", _("观看比例要在 50% 到 100% 之间"))


def cover_format(head: bytes) -> str | None:
    """The ffmpeg decoder for a PNG, JPEG or WebP picture, judged by its first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png_pipe"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg_pipe"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp_pipe"
    return None


def covers_root() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "covers"


def store_cover(stream) -> str:
    """A cover picture from an upload stream: at most MAX_COVER_BYTES are read (one more tells it is too
    large), it must be PNG, JPEG or WebP by its magic bytes and decode as one, and it is kept re-encoded
    as a small JPEG under DATA_DIR/covers/, named by its content. Returns that path (relative to DATA_DIR)."""
    data = stream.read(MAX_COVER_BYTES + 1)
    if not data:
        raise AuthoringError("cover", _("封面图片是空文件，请重新选择"))
    if len(data) > MAX_COVER_BYTES:
        raise AuthoringError("cover", _("封面图片太大：最多 %(mb)d MB", mb=MAX_COVER_BYTES // (1024 * 1024)))
    decoder = cover_format(data[:12])
    if decoder is None:
        raise AuthoringError("cover", _("封面图片必须是 PNG、JPEG 或 WebP 图片"))
    relative = Path("covers") / f"{hashlib.sha256(data).hexdigest()[:32]}.jpg"
    target = Path(current_app.config["DATA_DIR"]) / relative
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", suffix=".upload") as source:
            source.write(data)
            source.flush()
            try:
                ffmpeg_tools.still_image(source.name, target, decoder, *COVER_SIZE)
            except ffmpeg_tools.MediaError:
                raise AuthoringError("cover", _("封面图片无法读取，请换一张 PNG、JPEG 或 WebP 图片")) from None
    return relative.as_posix()


def cover_file(course: Course) -> Path | None:
    if not course.cover_path:
        return None
    path = Path(current_app.config["DATA_DIR"]) / course.cover_path
    return path if path.is_file() else None


def _new_slug(slug: str | None) -> str:
    if slug:
        if not SLUG.fullmatch(slug):
            raise AuthoringError("slug", _("网址标识只能用小写字母、数字和连字符，2–80 个字符，以字母或数字开头"))
        if Course.query.filter_by(slug=slug).first() is not None:
            raise AuthoringError("slug", _("网址标识“%(slug)s”已被另一门课程使用", slug=slug))
        return slug
    while True:
        candidate = f"course-{uuid.uuid4().hex[:8]}"
        if Course.query.filter_by(slug=candidate).first() is None:
            return candidate


def create_course(actor, fields: CourseFields, slug: str | None = None, cover=None) -> Course:
    """A new course, unpublished, with `actor` recorded as its author."""
    check_fields(fields)
    slug = _new_slug(slug)
    cover_path = store_cover(cover) if cover is not None else None
    course = Course(slug=slug, package_id=str(uuid.uuid4()), published=False, version=1, cover_path=cover_path,
                    credit_hours=fields.credit_hours or Decimal("0"))
    _apply(course, fields)
    course.published = False  # a course has lessons only once it exists: it is published from its page
    db.session.add(course)
    db.session.flush()
    db.session.add(CourseAuthor(course_id=course.id, user_id=actor.id))
    course_rules.record_rules(course)
    audit(actor, "course.create", course, f"{course.title}（{course.slug}）")
    audit(actor, "course.author.add", course, actor.username)
    db.session.commit()
    return course


def _apply(course: Course, fields: CourseFields) -> None:
    course.title, course.summary = fields.title.strip(), fields.summary.strip()
    course.mandatory, course.strict = fields.mandatory, fields.strict
    course.credit_rule = fields.credit_rule
    course.credit_note = fields.credit_note.strip() or None if fields.credit_rule == "fixed" else None
    if fields.credit_rule == "fixed":
        course.credit_hours = fields.credit_hours.quantize(Decimal("0.01"))
    course.watch_threshold = fields.watch_threshold
    wanted = [code for code in AUDIENCE_CODES if code in fields.audiences]
    keep = [row for row in course.audience_rows if row.audience in wanted]
    course.audience_rows = keep + [CourseAudience(audience=code) for code in wanted
                                   if code not in {row.audience for row in keep}]


def _described(course: Course) -> dict:
    return {"标题": course.title, "简介": course.summary, "人群": ",".join(sorted(course.audiences)),
            "必修": course.mandatory, "严格计时": course.strict, "学时规则": course.credit_rule,
            "学时": str(course.credit_hours), "学时依据": course.credit_note or "",
            "观看比例": f"{round(course.watch_threshold * 100)}%", "封面": course.cover_path or "",
            "发布": course.published}


def update_course(actor, course: Course, fields: CourseFields, cover=None) -> course_rules.RuleChange:
    """Save the course's fields (and a new cover); publishing through `fields.published` is refused,
    with nothing saved, when publish_problems finds any."""
    check_fields(fields)
    cover_path = store_cover(cover) if cover is not None else None
    before = _described(course)
    _apply(course, fields)
    if cover_path:
        course.cover_path = cover_path
    if fields.published and not course.published:
        problems = publish_problems(course)
        if problems:
            db.session.rollback()
            raise AuthoringError("published", _("不能发布：%(problems)s", problems="；".join(problems)))
    course.published = fields.published
    change = course_rules.record_rules(course)
    after = _described(course)
    diff = [f"{key}：{before[key]} → {after[key]}" if key != "简介" else "简介已修改"
            for key in before if before[key] != after[key]]
    if diff:
        audit(actor, "course.update", course, "；".join(diff))
    _audit_rules(actor, course, change)
    db.session.commit()
    return change


def _audit_rules(actor, course: Course, change: course_rules.RuleChange) -> None:
    if change.bumped:
        audit(actor, "course.version", course,
              f"第 {change.old_version} 版 → 第 {change.new_version} 版：" + "；".join(change.changes))


def latest_upload(lesson: Lesson) -> VideoAsset | None:
    return VideoAsset.query.filter_by(lesson_id=lesson.id).order_by(VideoAsset.id.desc()).first()


def publish_problems(course: Course) -> list[str]:
    """Why the course cannot be published now (empty: it can): no lesson, no audience, an empty
    lesson, or a lesson whose video is not ready — still processing, or failed."""
    lessons = course.active_lessons
    if not lessons:
        return [_("课程还没有任何课时，请先添加至少一节课")]
    problems = [] if course.audiences else [_("课程没有选择面向的人群")]
    for number, lesson in enumerate(lessons, start=1):
        upload = latest_upload(lesson)
        if lesson.video is not None and not lesson.video.ready:
            problems.append(_("第 %(n)d 节“%(title)s”的视频还没有处理好", n=number, title=lesson.title))
        elif upload is not None and upload.id != lesson.video_id and upload.status != "ready":
            if upload.status == "failed":
                problems.append(_("第 %(n)d 节“%(title)s”最近上传的视频处理失败（%(error)s），请重新上传或重试",
                                  n=number, title=lesson.title, error=upload.error or _("原因不明")))
            else:
                problems.append(_("第 %(n)d 节“%(title)s”的视频还在处理中，处理好以后再发布", n=number,
                                  title=lesson.title))
        elif lesson.video is None and lesson.quiz is None and not lesson.text_markdown.strip():
            problems.append(_("第 %(n)d 节“%(title)s”没有任何内容（课文、视频或测验）", n=number, title=lesson.title))
    return problems


def set_published(actor, course: Course, published: bool) -> None:
    if published == course.published:
        return
    if published:
        problems = publish_problems(course)
        if problems:
            raise AuthoringError("published", _("不能发布：%(problems)s", problems="；".join(problems)))
    course.published = published
    audit(actor, "course.publish" if published else "course.unpublish", course, course.title)
    db.session.commit()


# ---- lessons ----------------------------------------------------------------------------------

def _lesson_slug(course: Course) -> str:
    taken = {lesson.slug for lesson in course.lessons}
    number = len(course.lessons) + 1
    while f"lesson-{number}" in taken:
        number += 1
    return f"lesson-{number}"


def add_lesson(actor, course: Course, title: str) -> Lesson:
    """A new lesson at the end of the course (text, video and quiz are added on its own page)."""
    title = title.strip()
    if not title:
        raise AuthoringError("title", _("请填写课时名称"))
    position = (db.session.query(func.max(Lesson.position)).filter(Lesson.course_id == course.id).scalar() or 0) + 1
    lesson = Lesson(course=course, slug=_lesson_slug(course), title=title, position=position)
    db.session.add(lesson)
    change = course_rules.record_rules(course)
    audit(actor, "lesson.create", lesson, f"course:{course.id} {title}")
    _audit_rules(actor, course, change)
    db.session.commit()
    return lesson


def update_lesson(actor, lesson: Lesson, title: str, text: str) -> None:
    title = title.strip()
    if not title:
        raise AuthoringError("title", _("请填写课时名称"))
    if len(text) > MAX_TEXT_CHARS:
        raise AuthoringError("text", _("课文太长：最多 %(n)d 个字符", n=MAX_TEXT_CHARS))
    changes = ([f"标题：{lesson.title} → {title}"] if title != lesson.title else []) + \
              (["课文已修改"] if text != lesson.text_markdown else [])
    if not changes:
        return
    lesson.title, lesson.text_markdown, lesson.text_html = title, text, render_markdown(text)
    audit(actor, "lesson.update", lesson, "；".join(changes))
    db.session.commit()


def move_lesson(actor, lesson: Lesson, direction: str) -> bool:
    """Swap the lesson with its active neighbour above ("up") or below ("down"); active lessons are then
    numbered 1..n in order and retired ones after them. False when it is already first or last."""
    course = lesson.course
    active = sorted(course.active_lessons, key=lambda item: (item.position, item.id))
    index = active.index(lesson)
    other = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= other < len(active):
        return False
    active[index], active[other] = active[other], active[index]
    retired = sorted((item for item in course.lessons if item.retired), key=lambda item: (item.position, item.id))
    for position, item in enumerate(active + retired, start=1):
        item.position = position
    audit(actor, "lesson.move", lesson, f"第 {index + 1} 节 → 第 {other + 1} 节")
    db.session.commit()
    return True


def set_retired(actor, lesson: Lesson, retired: bool) -> course_rules.RuleChange | None:
    """Retire a lesson (never deleted: learners' progress points at it) or bring it back. The last
    active lesson of a published course cannot be retired (the course would have none)."""
    if lesson.retired == retired:
        return None
    course = lesson.course
    if retired and course.published and len(course.active_lessons) == 1:
        raise AuthoringError(None, _("这是已发布课程的最后一节，不能停用；请先把课程下线"))
    lesson.retired = retired
    if not retired:
        lesson.position = max((item.position for item in course.lessons), default=0) + 1
    change = course_rules.record_rules(course)
    audit(actor, "lesson.retire" if retired else "lesson.restore", lesson, lesson.title)
    _audit_rules(actor, course, change)
    db.session.commit()
    return change


def queue_slide_video(actor, lesson: Lesson, script: str) -> VideoAsset:
    """A video for the lesson rendered from a slide script by a background job; like an upload, it
    replaces the lesson's video only once it is ready. Raises AuthoringError("script") for a bad script."""
    try:
        slides = slide_tools.parse_slide_script(script)
    except slide_tools.SlideScriptError as exc:
        raise AuthoringError("script", str(exc)) from None
    asset = VideoAsset(lesson_id=lesson.id, status="pending", slide_script=script, original_name="slides.yaml")
    db.session.add(asset)
    # "video.upload" names who made it, so its swap-in is put down to them (media.services.asset_uploader_id)
    audit(actor, "video.upload", asset, f"lesson:{lesson.id} 幻灯片脚本（{len(slides)} 张）")
    db.session.commit()
    return asset


def replace_captions(actor, lesson: Lesson, raw: bytes, filename: str) -> None:
    """WebVTT captions for the lesson's video (and for an upload still being processed, which would
    otherwise bring the old ones back). Raises AuthoringError("captions") when they are not valid."""
    targets = [asset for asset in (lesson.video, latest_upload(lesson))
               if asset is not None and asset.status != "failed"]
    if not targets:
        raise AuthoringError("captions", _("这一节还没有视频：请先上传视频或生成幻灯片视频，再加字幕"))
    try:
        text = check_webvtt(raw)
    except ffmpeg_tools.MediaError as exc:
        raise AuthoringError("captions", f"{filename}：{exc.reason}") from None
    with tempfile.NamedTemporaryFile(dir=uploads_root(), prefix=".tmp-upload-", suffix=".vtt") as part:
        part.write(text.encode("utf-8"))
        part.flush()
        for asset in dict.fromkeys(targets):
            attach_captions(asset, Path(part.name))
            audit(actor, "video.captions", asset, f"lesson:{lesson.id} {filename}")
    db.session.commit()


def markdown_preview(text: str) -> str:
    """Lesson text as learners will see it: the same sanitiser as import (lms/courses/markdown.py)."""
    if len(text) > MAX_TEXT_CHARS:
        raise AuthoringError("text", _("课文太长：最多 %(n)d 个字符", n=MAX_TEXT_CHARS))
    return render_markdown(text)


# ---- preview ----------------------------------------------------------------------------------

@dataclass
class Preview:
    """The learner the authors' preview pretends to be: of `audience`, who has not started the course."""

    course: Course
    audience: str
    learner: SimpleNamespace = field(init=False)

    def __post_init__(self):
        if self.audience not in AUDIENCE_CODES:
            self.audience = self.course.audiences[0] if self.course.audiences else AUDIENCE_CODES[0]
        self.learner = SimpleNamespace(id=0, audience=self.audience, data_saver=False)

    @property
    def label(self) -> str:
        return audience_label(self.audience)

    @property
    def in_catalogue(self) -> bool:
        """Whether such a learner finds the course in the catalogue (published, and for their audience)."""
        return self.course.published and self.audience in self.course.audiences

    def states(self) -> dict:
        return {lesson.id: self.lesson_state(lesson) for lesson in self.course.active_lessons}

    def lesson_state(self, lesson: Lesson) -> dict:
        return state_of(lesson, None, lesson.quiz is None)
