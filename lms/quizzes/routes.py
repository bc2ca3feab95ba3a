from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from lms.courses import services as course_services
from lms.quizzes.grading import InvalidAnswers, submit_attempt
from lms.quizzes.models import QuizAttempt

bp = Blueprint("quizzes", __name__)


def _picked_from_form(quiz, form) -> dict[int, set[int]]:
    picked = {}
    for question in quiz.questions:
        values = set()
        for raw in form.getlist(f"q{question.position}"):
            if raw.isdigit() and int(raw) < len(question.choices):
                values.add(int(raw))
        if question.kind != "multiple" and len(values) > 1:
            values = set()  # a forged form with two answers to a single-choice question
        picked[question.position] = values
    return picked


@bp.route("/lessons/<int:lesson_id>/quiz", methods=["GET", "POST"])
@login_required
def take(lesson_id):
    try:
        lesson = course_services.visible_quiz_lesson(lesson_id)
    except course_services.LessonNotVisible:
        abort(404)
    quiz = lesson.quiz
    form = FlaskForm()  # CSRF only; the questions are rendered from the quiz itself
    attempts = QuizAttempt.query.filter_by(user_id=current_user.id, quiz_id=quiz.id).order_by(
        QuizAttempt.created_at.desc()).all()
    context = dict(lesson=lesson, course=lesson.course, quiz=quiz, form=form, attempts=attempts,
                   picked={}, results=None, attempt=None, missing=[], record=None)
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        picked = _picked_from_form(quiz, request.form)
        context["picked"] = picked
        try:
            attempt, results = submit_attempt(current_user.id, quiz, picked)
        except InvalidAnswers as exc:
            context["missing"] = exc.missing
            return render_template("quizzes/take.html", **context), 400
        record = course_services.update_completion(current_user.id, lesson.id) if attempt.passed else None
        context.update(results=results, attempt=attempt, record=record,
                       state=course_services.lesson_state(current_user.id, lesson))
    return render_template("quizzes/take.html", **context)
