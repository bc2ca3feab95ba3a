"""The quiz editor in the console: a lesson's quiz (settings, questions, order, retire/restore, enable)
and its per-question statistics. Thin views over lms/quizzes/authoring.py.

Every view needs a signed-in admin or instructor (403 for anyone else, before anything is looked up);
an instructor only the lessons of courses they author (lms/courses/authors.py: 403 otherwise); a lesson,
quiz or question that does not exist, or a question of another quiz, answers 404."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.admin.access import roles_required
from lms.admin.navigation import AUTHORS
from lms.courses.authors import authored_courses, authored_lesson_or_abort
from lms.courses.models import Lesson
from lms.extensions import db
from lms.quizzes import authoring, stats as quiz_stats
from lms.quizzes import format as quiz_format
from lms.quizzes.forms import ActionForm, QuestionForm, QuizSettingsForm
from lms.quizzes.models import Question, Quiz

bp = Blueprint("quiz_editor", __name__, url_prefix="/admin/quizzes")


def _quiz(lesson: Lesson) -> Quiz:
    quiz = authoring.quiz_of(lesson)
    if quiz is None:
        abort(404)
    return quiz


def _question(quiz: Quiz, question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.quiz_id != quiz.id:
        abort(404)
    return question


def _acted_on(lesson_id: int, question_id: int) -> tuple[Lesson, Quiz, Question]:
    """For the small POST buttons: the lesson the user may author, its quiz, the question; 400 without
    a valid CSRF token."""
    lesson = authored_lesson_or_abort(lesson_id)
    quiz = _quiz(lesson)
    question = _question(quiz, question_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return lesson, quiz, question


def _back(lesson: Lesson, anchor: str | None = None):
    return redirect(url_for("quiz_editor.edit", lesson_id=lesson.id) + (f"#{anchor}" if anchor else ""))


def _put_error(form, exc: authoring.QuizEditError) -> None:
    """An error of the service on the form field it names."""
    if exc.field == "choices":
        form.choices_errors.append(exc.message)
    elif exc.field == "scenario":
        form.scenario_errors.append(exc.message)
    elif exc.field in form._fields and exc.field not in ("csrf_token", "submit"):
        form[exc.field].errors = list(form[exc.field].errors) + [exc.message]
    else:
        form.form_errors.append(exc.message)


# ---- the list of lessons and their quizzes ---------------------------------------------------------

@bp.get("")
@roles_required(*AUTHORS)
def index():
    courses = authored_courses(current_user)
    lesson_ids = [lesson.id for course in courses for lesson in course.active_lessons]
    quizzes = {quiz.lesson_id: quiz for quiz in Quiz.query.filter(Quiz.lesson_id.in_(lesson_ids))} if lesson_ids else {}
    return render_template("quizzes/admin_index.html", courses=courses, quizzes=quizzes)


# ---- one lesson's quiz ---------------------------------------------------------------------------

def _settings_form(quiz: Quiz | None) -> QuizSettingsForm:
    return QuizSettingsForm(data={"pass_score": quiz.pass_score, "ask": quiz.ask} if quiz else {"pass_score": 60})


def _editor_page(lesson: Lesson, quiz: Quiz | None, form: QuizSettingsForm, status: int = 200, error: str | None = None):
    questions = quiz.active_questions if quiz else []
    retired = [q for q in quiz.questions if q.retired] if quiz else []
    counts = quiz_stats.answer_counts(quiz) if quiz else {}
    return render_template("quizzes/admin_quiz.html", lesson=lesson, course=lesson.course, quiz=quiz, form=form,
                           questions=questions, retired=retired, counts=counts, error=error,
                           kinds=authoring.kind_names()), status


@bp.route("/lessons/<int:lesson_id>", methods=["GET", "POST"])
@roles_required(*AUTHORS)
def edit(lesson_id):
    """GET: the quiz with its questions (or a form to create it). POST: save the pass mark and the number
    of questions drawn, creating the quiz (not yet asked) when the lesson has none."""
    lesson = authored_lesson_or_abort(lesson_id)
    quiz = authoring.quiz_of(lesson)
    form = _settings_form(quiz)
    if request.method == "POST":
        if not form.validate_on_submit():
            return _editor_page(lesson, quiz, form, 400)
        created = quiz is None
        try:
            quiz = authoring.save_settings(current_user, lesson, form.pass_score.data, form.ask.data)
        except authoring.QuizEditError as exc:
            db.session.rollback()
            _put_error(form, exc)
            return _editor_page(lesson, quiz, form, 400)
        flash(_("已创建测验。添加题目后点“启用测验”，学员才会看到。") if created else _("已保存测验设置。"))
        return _back(lesson)
    return _editor_page(lesson, quiz, form)


@bp.post("/lessons/<int:lesson_id>/state")
@roles_required(*AUTHORS)
def state(lesson_id):
    lesson = authored_lesson_or_abort(lesson_id)
    quiz = _quiz(lesson)
    if not ActionForm().validate_on_submit():
        abort(400)
    enable = request.form.get("enable") == "1"
    try:
        authoring.set_enabled(current_user, quiz, enable)
    except authoring.QuizEditError as exc:
        db.session.rollback()
        return _editor_page(lesson, quiz, _settings_form(quiz), 400, error=exc.message)
    flash(_("测验已启用：学员学这一节时要通过它。") if enable else _("测验已停用：学员不再需要做这个测验，已有的答卷都保留。"))
    return _back(lesson)


# ---- questions -----------------------------------------------------------------------------------

def _question_page(lesson, quiz, form, question=None, status=200):
    return render_template("quizzes/admin_question.html", lesson=lesson, course=lesson.course, quiz=quiz,
                           form=form, question=question,
                           answered=question is not None and authoring.answered(question),
                           submitted=quiz_stats.submitted_answers(quiz.id, question.position) if question else 0), status


def _save_question(lesson, quiz, form: QuestionForm, save, question=None):
    """POST of the question form: `save(spec)` the question it describes and go back to the quiz, or show
    the form again with every problem on its field (nothing saved)."""
    valid = form.validate_on_submit()
    spec = form.spec()  # also when a field failed: every problem is shown at once
    if valid and spec is not None:
        try:
            saved, message = save(spec)
        except authoring.QuizEditError as exc:
            db.session.rollback()
            _put_error(form, exc)
        else:
            flash(message)
            return _back(lesson, f"question-{saved.id}")
    form.pad_choices()
    return _question_page(lesson, quiz, form, question, status=400)


@bp.route("/lessons/<int:lesson_id>/questions/new", methods=["GET", "POST"])
@roles_required(*AUTHORS)
def new_question(lesson_id):
    lesson = authored_lesson_or_abort(lesson_id)
    quiz = _quiz(lesson)
    form = QuestionForm()
    if request.method == "GET":
        kind = request.args.get("kind")
        form.kind.data = kind if kind in dict(form.kind.choices) else "single"
        scenario = request.args.get("scenario")
        form.scenario_kind.data = scenario if scenario in quiz_format.SCENARIO_KINDS else ""
        form.pad_choices()
        return _question_page(lesson, quiz, form)

    def add(spec):
        question = authoring.add_question(current_user, quiz, spec)
        return question, _("已添加第 %(n)d 题。", n=len(quiz.active_questions))

    return _save_question(lesson, quiz, form, add)


@bp.route("/lessons/<int:lesson_id>/questions/<int:question_id>", methods=["GET", "POST"])
@roles_required(*AUTHORS)
def question(lesson_id, question_id):
    lesson = authored_lesson_or_abort(lesson_id)
    quiz = _quiz(lesson)
    question = _question(quiz, question_id)
    form = QuestionForm()
    if request.method == "GET":
        form.fill(quiz_format.question_spec(question))
        return _question_page(lesson, quiz, form, question)
    if question.retired:
        abort(409)

    def update(spec):
        saved = authoring.update_question(current_user, question, spec)
        return saved, (_("已保存为新版本：已有学员答过旧版本，旧版本停用并保留，他们的成绩不变。")
                       if saved.id != question.id else _("已保存。"))

    return _save_question(lesson, quiz, form, update, question)


@bp.post("/lessons/<int:lesson_id>/questions/<int:question_id>/move")
@roles_required(*AUTHORS)
def move(lesson_id, question_id):
    lesson, quiz, question = _acted_on(lesson_id, question_id)
    authoring.move_question(current_user, question, -1 if request.form.get("direction") == "up" else 1)
    return _back(lesson, f"question-{question.id}")


@bp.post("/lessons/<int:lesson_id>/questions/<int:question_id>/retire")
@roles_required(*AUTHORS)
def retire(lesson_id, question_id):
    lesson, quiz, question = _acted_on(lesson_id, question_id)
    try:
        outcome = authoring.retire_question(current_user, question)
    except authoring.QuizEditError as exc:
        db.session.rollback()
        return _editor_page(lesson, quiz, _settings_form(quiz), 400, error=exc.message)
    flash(_("已停用这道题：已有学员答过，题目保留在“已停用的题目”里，可以恢复。") if outcome == "retired"
          else _("已删除这道题（还没有学员答过）。"))
    return _back(lesson)


@bp.post("/lessons/<int:lesson_id>/questions/<int:question_id>/restore")
@roles_required(*AUTHORS)
def restore(lesson_id, question_id):
    lesson, quiz, question = _acted_on(lesson_id, question_id)
    authoring.restore_question(current_user, question)
    flash(_("已恢复这道题，排在最后。"))
    return _back(lesson, f"question-{question.id}")


# ---- statistics ----------------------------------------------------------------------------------

@bp.get("/lessons/<int:lesson_id>/stats")
@roles_required(*AUTHORS)
def stats(lesson_id):
    lesson = authored_lesson_or_abort(lesson_id)
    quiz = _quiz(lesson)
    return render_template("quizzes/admin_stats.html", lesson=lesson, course=lesson.course, quiz=quiz,
                           stats=quiz_stats.quiz_stats(quiz), kinds=authoring.kind_names())
