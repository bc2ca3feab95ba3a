import math

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from lms.accounts.models import utcnow
from lms.courses import services as course_services
from lms.db_resilience import rerun_safe
from lms.quizzes import services

bp = Blueprint("quizzes", __name__)


def quiz_lesson_or_404(lesson_id: int):
    try:
        return course_services.visible_quiz_lesson(lesson_id)
    except course_services.LessonNotVisible:
        abort(404)


def shown_values(form, attempt) -> dict[int, set[int]]:
    """Question index → the choice places a posted form picked (field q<index>, digits only)."""
    return {index: {int(v) for v in form.getlist(f"q{index}") if v.isdigit()}
            for index in range(len(attempt.draw))}


def render_quiz_page(lesson, attempt, *, status=200, echo=None, missing=(), record=None, retry_at=None,
                     unanswered_check=None):
    """The quiz page for an open attempt (the form), a finished one (its result) or none (a stale form)."""
    quiz = lesson.quiz
    finished = attempt is not None and attempt.finished
    context = dict(
        lesson=lesson, course=lesson.course, quiz=quiz, form=FlaskForm(), attempt=attempt, finished=finished,
        questions=services.shown_questions(attempt, echo) if attempt is not None else [],
        explained=attempt is not None and services.explanations_shown(attempt),
        missing=set(missing), record=record, retry_at=retry_at, unanswered_check=unanswered_check,
        retry_minutes=math.ceil((retry_at - utcnow()).total_seconds() / 60) if retry_at else None,
        wait_minutes=math.ceil(current_app.config["QUIZ_RETRY_WAIT_SECONDS"] / 60),
        state=course_services.lesson_state(current_user.id, lesson) if finished else None,
        done_count=services.finished_count(current_user.id, quiz.id),
        first=services.first_attempt(current_user.id, quiz.id),
    )
    return render_template("quizzes/take.html", **context), status


@bp.route("/lessons/<int:lesson_id>/quiz", methods=["GET", "POST"])
@login_required
@rerun_safe  # an attempt is opened once, graded once, credited once: run again, it shows the same result
def take(lesson_id):
    """GET opens (or resumes) the learner's attempt; POST submits it: answers not committed yet are
    committed, the attempt is graded and closed, and the page shows its result."""
    lesson = quiz_lesson_or_404(lesson_id)
    if request.method == "GET":
        try:
            attempt = services.start_or_resume(current_user.id, lesson.quiz)
        except services.RetryTooSoon as wait:
            return render_quiz_page(lesson, wait.last, retry_at=wait.at)
        return render_quiz_page(lesson, attempt)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        attempt = services.attempt_for_form(current_user.id, lesson.quiz, request.form.get("attempt", ""))
    except services.AttemptNotOpen:
        return render_quiz_page(lesson, None, status=409)
    if not attempt.finished:  # a finished one (the form sent again) shows its result, graded once
        picked = shown_values(request.form, attempt)
        try:
            services.finish_attempt(attempt, picked)
        except services.InvalidAnswers as exc:
            return render_quiz_page(lesson, attempt, status=400, echo=picked, missing=exc.missing)
    record = course_services.update_completion(current_user.id, lesson.id) if attempt.passed else None
    return render_quiz_page(lesson, attempt, record=record,
                            retry_at=services.next_try_at(lesson.quiz, services.last_attempt(current_user.id, lesson.quiz.id)))
