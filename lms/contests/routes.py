"""Contests: the console (/admin/contests — list, create, edit, delete, export) and the learner's pages
(/contests — open contests, intro, one question at a time, review, rankings). Thin views over services.

Console views need an organiser (admin, unit admin; 403 for anyone else); a contest the viewer may not
manage answers 404, as one that does not exist. A learner's attempt is found only among their own."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.accounts.scope import oversight_root
from lms.admin.access import roles_required
from lms.admin.forms import show_field_error
from lms.contests import services
from lms.contests.forms import AnswerForm, ContestForm, DeleteForm, StartForm
from lms.contests.models import Contest
from lms.extensions import db
from lms.records.services import to_local

bp = Blueprint("contests", __name__)

ORGANISERS = services.ORGANISER_ROLES
NO_STORE = {"Cache-Control": "no-store"}


def _managed(contest_id: int) -> Contest:
    contest = db.session.get(Contest, contest_id)
    if contest is None or not services.may_manage(current_user, contest):
        abort(404)
    return contest


def _visible(contest_id: int) -> Contest:
    contest = db.session.get(Contest, contest_id)
    if contest is None or not services.may_view(current_user, contest):
        abort(404)
    return contest


def _me():
    return current_user._get_current_object()


# ---- the console --------------------------------------------------------------------------------

@bp.get("/admin/contests")
@roles_required(*ORGANISERS)
def index():
    contests = services.contests_for_organiser(current_user)
    counts = {contest.id: services.attempt_count(contest) for contest in contests}
    return render_template("contests/admin_index.html", contests=contests, counts=counts,
                           root=oversight_root(current_user), now=services.clock(None))


def _form_choices(form: ContestForm) -> dict[int, int]:
    courses = services.course_choices()
    sizes = services.pool_sizes([course.id for course in courses])
    form.courses.choices = [(course.id, _("%(title)s（%(n)d 题）", title=course.title, n=sizes.get(course.id, 0)))
                            for course in courses]
    return sizes


def _data(form: ContestForm) -> services.ContestData:
    return services.ContestData(
        title=form.title.data or "", description=form.description.data or "", starts_local=form.starts_at.data,
        ends_local=form.ends_at.data, audiences=form.audiences.data or [], unit_codes=form.units.data or "",
        course_ids=form.courses.data or [], question_count=form.question_count.data,
        seconds_per_question=form.seconds_per_question.data, attempts_per_day=form.attempts_per_day.data,
        score_rule=form.score_rule.data or "", hours=form.hours.data, min_score=form.min_score.data)


def _form_page(form, contest=None):
    failed = any(field.errors for field in form)
    taken = services.attempt_count(contest) if contest is not None else 0
    return render_template("contests/admin_form.html", form=form, contest=contest, taken=taken,
                           delete_form=DeleteForm()), 400 if failed else 200


@bp.route("/admin/contests/new", methods=["GET", "POST"])
@roles_required(*ORGANISERS)
def create():
    form = ContestForm()
    _form_choices(form)
    if request.method == "GET":
        form.units.data = current_user.unit.code  # the organiser's own root by default
        form.score_rule.data = "best"
        form.question_count.data, form.seconds_per_question.data, form.attempts_per_day.data = 10, 30, 1
        form.min_score.data = 60
    elif form.validate_on_submit():
        try:
            contest = services.create_contest(current_user, _data(form))
        except services.ContestError as exc:
            db.session.rollback()
            show_field_error(form, exc)
        else:
            flash(_("已创建竞赛“%(title)s”。", title=contest.title))
            return redirect(url_for("contests.index"))
    return _form_page(form)


@bp.route("/admin/contests/<int:contest_id>/edit", methods=["GET", "POST"])
@roles_required(*ORGANISERS)
def edit(contest_id):
    contest = _managed(contest_id)
    saved = {"title": contest.title, "description": contest.description, "audiences": contest.audiences,
             "units": " ".join(unit.code for unit in contest.units), "courses": contest.course_ids,
             "question_count": contest.question_count, "seconds_per_question": contest.seconds_per_question,
             "attempts_per_day": contest.attempts_per_day, "score_rule": contest.score_rule, "hours": contest.hours,
             "min_score": contest.min_score, "starts_at": to_local(contest.starts_at).replace(tzinfo=None),
             "ends_at": to_local(contest.ends_at).replace(tzinfo=None)}
    form = ContestForm(data=saved)
    _form_choices(form)
    if request.method == "POST" and form.validate_on_submit():
        try:
            changed = services.update_contest(current_user, contest, _data(form))
        except services.ContestError as exc:
            db.session.rollback()
            contest = _managed(contest_id)
            show_field_error(form, exc)
        else:
            flash(_("已保存。") if changed else _("没有改动。"))
            return redirect(url_for("contests.index"))
    return _form_page(form, contest)


@bp.post("/admin/contests/<int:contest_id>/delete")
@roles_required(*ORGANISERS)
def delete(contest_id):
    contest = _managed(contest_id)
    if not DeleteForm().validate_on_submit():
        abort(400)
    try:
        services.delete_contest(current_user, contest)
    except services.ContestError as exc:
        db.session.rollback()
        flash(str(exc.message))
        return redirect(url_for("contests.edit", contest_id=contest_id))
    flash(_("已删除竞赛。"))
    return redirect(url_for("contests.index"))


@bp.get("/admin/contests/<int:contest_id>/results.<fmt>")
@roles_required(*ORGANISERS)
def export(contest_id, fmt):
    contest = _managed(contest_id)
    if fmt == "csv":
        body, mimetype = services.export_csv(contest), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        body, mimetype = services.export_xlsx(contest), \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        abort(404)
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=contest-{contest.id}-results.{fmt}", **NO_STORE})


# ---- the learner's pages ------------------------------------------------------------------------

@bp.get("/contests")
@login_required
def contests():
    me = _me()
    return render_template("contests/list.html", open_now=services.open_contests(me),
                           taken=services.taken_contests(me))


@bp.get("/contests/<int:contest_id>")
@login_required
def intro(contest_id):
    contest = _visible(contest_id)
    me = _me()
    return render_template("contests/intro.html", contest=contest, form=StartForm(),
                           problem=services.eligibility_problem(contest, me) or services.window_problem(contest),
                           used=services.attempts_today(contest, me), open=services.open_attempt(contest, me),
                           mine=services.counted_result(contest, me), credited=services.credited(contest, me),
                           rule=services.rule_label(contest.score_rule)), 200, NO_STORE


@bp.post("/contests/<int:contest_id>/start")
@login_required
def start(contest_id):
    contest = _visible(contest_id)
    if not StartForm().validate_on_submit():
        abort(400)
    try:
        attempt = services.start_attempt(contest, _me())
    except services.ContestRefused as exc:
        db.session.rollback()
        return render_template("contests/refused.html", contest=contest, message=exc.message), exc.status, NO_STORE
    return redirect(url_for("contests.play", contest_id=contest.id, attempt_id=attempt.id))


def _attempt(contest: Contest, attempt_id: int):
    attempt = services.attempt_of(contest, _me(), attempt_id)
    if attempt is None:
        abort(404)
    return attempt


@bp.get("/contests/<int:contest_id>/attempts/<int:attempt_id>")
@login_required
def play(contest_id, attempt_id):
    contest = _visible(contest_id)
    attempt = _attempt(contest, attempt_id)
    served = services.current_question(attempt)
    if served is None:
        return render_template("contests/review.html", contest=contest, attempt=attempt,
                               items=services.review(attempt), credited=services.credited(contest, _me()),
                               mine=services.counted_result(contest, _me())), 200, NO_STORE
    question = services._question(served.question_id)
    item = attempt.draw[served.position]
    by_id = {choice.id: choice for choice in question.choices} if question else {}
    choices = [(place, by_id[cid]) for place, cid in enumerate(item["c"]) if cid in by_id]
    return render_template("contests/play.html", contest=contest, attempt=attempt, served=served, question=question,
                           choices=choices, total=len(attempt.draw), form=AnswerForm(),
                           seconds_left=services.seconds_left(contest, served)), 200, NO_STORE


@bp.post("/contests/<int:contest_id>/attempts/<int:attempt_id>/answer")
@login_required
def answer(contest_id, attempt_id):
    contest = _visible(contest_id)
    attempt = _attempt(contest, attempt_id)
    if not AnswerForm().validate_on_submit():
        abort(400)
    index = request.form.get("index", type=int)
    places = [value for value in request.form.getlist("c", type=int) if value is not None][:20]
    back = redirect(url_for("contests.play", contest_id=contest.id, attempt_id=attempt.id))
    if index is None:
        abort(400)
    try:
        result = services.answer(attempt, index, places)
    except services.ContestRefused as exc:
        db.session.rollback()
        if exc.code == "no_choice":
            flash(exc.message)
            return back
        return render_template("contests/refused.html", contest=contest, message=exc.message), exc.status, NO_STORE
    if result.status != "recorded":
        flash(result.message)
    return back


@bp.get("/contests/<int:contest_id>/rankings")
@login_required
def rankings(contest_id):
    contest = _visible(contest_id)
    me = _me()
    organiser = services.may_manage(me, contest)
    stats = services.unit_results(contest)
    if organiser:
        people, mine, total = services.full_ranking(contest), None, None
    else:
        view = services.learner_ranking(contest, me)
        people, mine, total = view.top, view.mine, view.total
    return render_template("contests/rankings.html", contest=contest, people=people, mine=mine, total=total,
                           organiser=organiser, by_rate=services.units_by_participation(stats),
                           by_score=services.units_by_score(stats)), 200, NO_STORE
