"""/assessment (learners) and /admin/assessment (the county's report): thin views over
lms/assessment/services.py and report.py."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.accounts.models import utcnow
from lms.accounts.scope import OutsideScope
from lms.accounts.units import unit_in_field
from lms.admin.access import roles_required
from lms.admin.navigation import OVERSEERS
from lms.assessment import report as reports, services
from lms.assessment.forms import ActionForm, ReportForm
from lms.assessment.models import DIMENSION_LABELS, AssessmentSitting
from lms.extensions import db
from lms.records.services import to_local

bp = Blueprint("assessment", __name__)


def _csrf_or_400() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


@bp.app_template_filter("assessment_date")
def _local_date(moment) -> str:
    """A naive UTC moment as its date in Asia/Shanghai: 2026-12-31."""
    return to_local(moment).strftime("%Y-%m-%d") if moment else ""


@bp.app_context_processor
def _labels():
    return {"dimension_labels": DIMENSION_LABELS, "national_context": reports.NATIONAL_CONTEXT}


@bp.get("/assessment")
@login_required
def intro():
    try:
        pool = services.current_pool()
    except services.NoPool:
        return render_template("assessment/intro.html", pool=None, form=ActionForm()), 503
    sitting = services.open_sitting(current_user)
    return render_template("assessment/intro.html", pool=pool, form=ActionForm(), sitting=sitting,
                           last=services.last_finished(current_user.id),
                           retake_at=services.retake_at(current_user.id, pool),
                           left=services.seconds_left(sitting) if sitting else None)


@bp.post("/assessment/start")
@login_required
def start():
    _csrf_or_400()
    try:
        services.start_or_resume(current_user)
    except services.NoPool:
        abort(503)
    except services.PoolTooSmall:
        return render_template("error.html", code=503,
                               message=_("题库的题目不够抽一次自测，请联系管理员重新导入题库。")), 503
    except services.RetakeTooSoon as wait:
        return render_template("assessment/intro.html", pool=services.current_pool(), form=ActionForm(),
                               sitting=None, last=wait.last, retake_at=wait.at, left=None, refused=True), 409
    return redirect(url_for("assessment.sitting"))


def _question_page(sitting, index: int, *, status=200, problem=None):
    shown = services.shown_items(sitting)
    index = min(max(index, 0), len(shown) - 1)
    answered = sum(1 for item in shown if item.answered)
    return render_template("assessment/sitting.html", sitting=sitting, form=ActionForm(), q=shown[index],
                           total=len(shown), answered=answered, problem=problem,
                           left=services.seconds_left(sitting), numbers=shown), status


@bp.get("/assessment/sitting")
@login_required
def sitting():
    """The open sitting, one question a page: ?n= the question (default: the first unanswered)."""
    sitting = services.open_sitting(current_user)
    if sitting is None:
        last = services.last_finished(current_user.id)
        if last is not None and (utcnow() - last.finished_at).total_seconds() < 3600:
            return redirect(url_for("assessment.result", sitting_id=last.id))  # time ran out: its result
        return redirect(url_for("assessment.intro"))
    raw = request.args.get("n", "")
    if raw.isdigit() and len(raw) < 4:
        index = int(raw) - 1
    else:
        index = services.next_unanswered(sitting)
        index = 0 if index is None else index
    return _question_page(sitting, index)


@bp.post("/assessment/answer")
@login_required
def answer():
    """Commit one answer (the first answer to a question stays), then go on to the next unanswered one."""
    _csrf_or_400()
    try:
        sitting = services.sitting_for_form(current_user.id, request.form.get("sitting", ""))
    except services.SittingNotOpen:
        return render_template("assessment/stale.html"), 409
    raw = request.form.get("index", "")
    index = int(raw) if raw.isdigit() and len(raw) < 4 else -1
    shown = {int(v) for v in request.form.getlist("choice") if v.isdigit() and len(v) < 4}
    try:
        services.commit_answer(sitting, index, shown, current_user)
    except services.SittingNotOpen:
        return redirect(url_for("assessment.result", sitting_id=sitting.id))
    except services.TimeUp:
        return render_template("assessment/result.html", **_result_context(sitting, late=True)), 409
    except services.InvalidAnswer:
        if not 0 <= index < len(sitting.draw):
            abort(400)
        return _question_page(sitting, index, status=400, problem=_("请先选一个答案，再点“确定”。"))
    following = services.next_unanswered(sitting, index)
    if following is None:
        return redirect(url_for("assessment.sitting", n=len(sitting.draw), done=1))
    return redirect(url_for("assessment.sitting", n=following + 1))


@bp.post("/assessment/finish")
@login_required
def finish():
    _csrf_or_400()
    try:
        sitting = services.sitting_for_form(current_user.id, request.form.get("sitting", ""))
    except services.SittingNotOpen:
        return render_template("assessment/stale.html"), 409
    services.finish(sitting, current_user)
    return redirect(url_for("assessment.result", sitting_id=sitting.id))


def _result_context(sitting, late=False) -> dict:
    return dict(sitting=sitting, late=late, rows=services.dimension_rows(sitting),
                items=services.shown_items(sitting),
                courses=services.recommended_courses(sitting, current_user),
                retake_at=services.retake_at(current_user.id, services.current_pool()))


@bp.get("/assessment/result/<int:sitting_id>")
@login_required
def result(sitting_id: int):
    sitting = db.session.get(AssessmentSitting, sitting_id)
    if sitting is None or sitting.user_id != current_user.id:
        abort(404)
    if not sitting.finished:
        return redirect(url_for("assessment.sitting"))
    return render_template("assessment/result.html", **_result_context(sitting))


# --- the county's report -------------------------------------------------------------------------

@bp.get("/admin/assessment")
@roles_required(*OVERSEERS)
def report():
    form = ReportForm(request.args)
    valid = form.validate()
    unit = unit_in_field(form.unit)
    if not valid or form.unit.errors:
        return render_template("assessment/report.html", form=form, report=None), 400
    try:
        board = reports.build(current_user, unit, (form.quarter.data or "").strip() or None, form.audience.data or None)
    except OutsideScope:
        abort(403)
    return render_template("assessment/report.html", form=form, report=board)
