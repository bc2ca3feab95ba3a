"""Elder-mode rules as plain functions: who sees 长辈版, at which font size, where 继续学习 leads."""
from __future__ import annotations

from dataclasses import dataclass

from lms.courses.models import Course, Lesson, LessonProgress
from lms.extensions import db

FONT_SCALES = ("standard", "large", "xlarge")  # 标准 / 大 / 特大
ELDER_COOKIE = "elder"
FONT_COOKIE = "font"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Other names people search for (MIIT 适老化 calls it 关怀版 / 亲情版 in many apps).
ALIASES = ("长辈版", "关怀版", "亲情版", "适老化", "老年模式", "大字版")


def elder_mode_for(user, cookie: str | None) -> bool:
    """The user's own choice; without one, on for the elder audience. Anonymous visitors: the cookie."""
    if user is not None and getattr(user, "is_authenticated", False):
        if user.elder_mode is not None:
            return bool(user.elder_mode)
        return user.audience == "elder"
    return cookie == "1"


def font_scale_for(user, cookie: str | None) -> str:
    if user is not None and getattr(user, "is_authenticated", False) and user.font_scale in FONT_SCALES:
        return user.font_scale
    return cookie if cookie in FONT_SCALES else "standard"


def save_preferences(user, elder: bool | None = None, font: str | None = None) -> None:
    """Store a signed-in learner's choice so it follows them to any tablet."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    if elder is not None:
        user.elder_mode = elder
    if font is not None:
        if font not in FONT_SCALES:
            raise ValueError(font)
        user.font_scale = font
    db.session.commit()


@dataclass
class ContinueTarget:
    course: Course
    lesson: Lesson
    position: float  # seconds into the video where the lesson page resumes


def continue_target(user_id: int) -> ContinueTarget | None:
    """Where 继续学习 leads: the lesson watched most recently, or the next unfinished lesson of its course."""
    rows = (
        LessonProgress.query.filter_by(user_id=user_id)
        .filter(LessonProgress.last_heartbeat_at.isnot(None))
        .order_by(LessonProgress.last_heartbeat_at.desc())
        .limit(20)
        .all()
    )
    for progress in rows:
        lesson = progress.lesson
        course = lesson.course
        if not course.published:
            continue
        if not lesson.retired and progress.completed_at is None:
            return ContinueTarget(course, lesson, progress.last_position or 0.0)
        done = {
            p.lesson_id
            for p in LessonProgress.query.filter_by(user_id=user_id).filter(LessonProgress.completed_at.isnot(None))
        }
        for other in course.active_lessons:
            if other.id not in done:
                return ContinueTarget(course, other, 0.0)
    return None

