"""Course authorship: which instructors may replace a course's videos and follow their processing.
Admins may do so on every course; an instructor only on the courses they author."""
from __future__ import annotations

from lms.accounts.models import User
from lms.courses.models import Course, CourseAuthor
from lms.extensions import db
from lms.records.audit import audit


class AuthorshipError(ValueError):
    pass


def may_author(user, course_id: int) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.role == "admin":
        return True
    if user.role != "instructor":
        return False
    return db.session.get(CourseAuthor, (course_id, user.id)) is not None


def authored_course_or_abort(course_id: int) -> Course:
    """The course the signed-in user may author: 404 when there is none, 403 when not theirs.
    Every authoring page (courses, lessons, quizzes, videos) looks its course up through here."""
    from flask import abort
    from flask_login import current_user

    course = db.session.get(Course, course_id)
    if course is None:
        abort(404)
    if not may_author(current_user, course.id):
        abort(403)
    return course


def authored_lesson_or_abort(lesson_id: int, course_id: int | None = None):
    """A lesson of a course the signed-in user may author (404 when missing or, with `course_id`,
    of another course; 403 when not theirs)."""
    from flask import abort

    from lms.courses.models import Lesson

    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or (course_id is not None and lesson.course_id != course_id):
        abort(404)
    authored_course_or_abort(lesson.course_id)
    return lesson


def authored_courses(user) -> list[Course]:
    """The courses `user` may author, in catalogue order (every course for admins)."""
    query = Course.query.order_by(Course.id)
    if user.role != "admin":
        query = query.join(CourseAuthor, CourseAuthor.course_id == Course.id).filter(CourseAuthor.user_id == user.id)
    return query.all()


def author_names(course: Course) -> list[str]:
    return [username for (username,) in db.session.query(User.username)
            .join(CourseAuthor, CourseAuthor.user_id == User.id)
            .filter(CourseAuthor.course_id == course.id).order_by(User.username)]


def _course_and_user(slug: str, username: str) -> tuple[Course, User]:
    course = Course.query.filter_by(slug=slug).first()
    if course is None:
        raise AuthorshipError(f"没有课程“{slug}”")
    user = User.query.filter_by(username=username).first()
    if user is None:
        raise AuthorshipError(f"没有账号“{username}”")
    return course, user


def add_author(slug: str, username: str, actor_id: int | None = None) -> bool:
    """Make `username` an author of course `slug`; False when they already were."""
    course, user = _course_and_user(slug, username)
    if user.role != "instructor":
        raise AuthorshipError(f"账号“{username}”的角色是 {user.role}，只有教师（instructor）可以做课程作者"
                              "（管理员本来就能管理所有课程）")
    if db.session.get(CourseAuthor, (course.id, user.id)) is not None:
        return False
    db.session.add(CourseAuthor(course_id=course.id, user_id=user.id))
    audit(actor_id, "course.author.add", course, username)
    db.session.commit()
    return True


def remove_author(slug: str, username: str, actor_id: int | None = None) -> bool:
    """Remove `username` from the authors of course `slug`; False when they were not one."""
    course, user = _course_and_user(slug, username)
    row = db.session.get(CourseAuthor, (course.id, user.id))
    if row is None:
        return False
    db.session.delete(row)
    audit(actor_id, "course.author.remove", course, username)
    db.session.commit()
    return True
