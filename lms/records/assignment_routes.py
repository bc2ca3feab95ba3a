"""Assignments: the learner's home (/my), the admin's assignment and target forms, and the
unit admin's report of who has not finished which assignment (with CSV)."""
from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.accounts.models import Unit
from lms.accounts.scope import OutsideScope, scoped_unit
from lms.audiences import AUDIENCE_CODES
from lms.courses.models import Course
from lms.extensions import db
from lms.records import assignments, export
from lms.records.assignment_forms import RequirementForm, TargetForm
from lms.records.requirements import Requirement

bp = Blueprint("assignments", __name__)


@bp.get("/my")
@login_required
def my_home():
    return render_template("records/my_tasks.html", home=assignments.my_assignments(current_user))


def _require_admin():
    if current_user.role != "admin":
        abort(403)


def _course_choices():
    return [(c.id, c.title) for c in Course.query.filter_by(published=True).order_by(Course.title)]


@bp.route("/admin/assignments", methods=["GET", "POST"])
@login_required
def manage():
    _require_admin()
    form = RequirementForm()
    form.course.choices = _course_choices()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            unit = None
            if form.unit.data and form.unit.data.strip():
                unit = Unit.query.filter_by(code=form.unit.data.strip()).first()
                if unit is None:
                    form.unit.errors.append(_("单位编码不存在"))
            if not form.unit.errors:
                try:
                    assignments.create_requirement(
                        db.session.get(Course, form.course.data), form.due_date.data,
                        audience=form.audience.data or None, unit=unit,
                        usernames=assignments.parse_usernames(form.usernames.data), note=form.note.data or "",
                        actor=current_user)
                except assignments.AssignmentError as exc:
                    form.usernames.errors.append(str(exc))
                else:
                    flash(_("已指派学习任务。"))
                    return redirect(url_for("assignments.manage"))
        status = 400
    rows = [(r, assignments.describe_scope(r)) for r in assignments.active_requirements()]
    return render_template("records/assignments.html", form=form, rows=rows), status


@bp.post("/admin/assignments/<int:requirement_id>/withdraw")
@login_required
def withdraw(requirement_id):
    _require_admin()
    requirement = db.session.get(Requirement, requirement_id) or abort(404)
    assignments.withdraw_requirement(requirement, actor=current_user)
    flash(_("已撤销该学习任务。"))
    return redirect(url_for("assignments.manage"))


@bp.route("/admin/targets", methods=["GET", "POST"])
@login_required
def targets():
    _require_admin()
    current = assignments.all_targets()
    form = TargetForm(data={f"target_{code}": hours for code, hours in current.items()})
    if request.method == "POST":
        if form.validate_on_submit():
            for code in AUDIENCE_CODES:
                assignments.set_target(code, getattr(form, f"target_{code}").data, actor=current_user)
            flash(_("年度目标已保存。"))
            return redirect(url_for("assignments.targets"))
        return render_template("records/targets.html", form=form), 400
    return render_template("records/targets.html", form=form)


def _report_scope():
    """Admins: any unit (or all); unit admins: their own subtree only (403 beyond it)."""
    if current_user.role not in ("admin", "unit_admin"):
        abort(403)
    code = (request.args.get("unit") or "").strip()
    unit = None
    if code:
        unit = Unit.query.filter_by(code=code).first()
        if unit is None:
            abort(404)
    try:
        return scoped_unit(current_user, unit)
    except OutsideScope:
        abort(403)


@bp.get("/admin/assignments/report")
@login_required
def report():
    unit = _report_scope()
    rows = list(assignments.outstanding(unit))
    return render_template("records/assignment_report.html", rows=rows, unit=unit)


@bp.get("/admin/assignments/report.csv")
@login_required
def report_csv():
    unit = _report_scope()
    stem = f"weiwancheng-{unit.code if unit else 'all'}-{date.today()}"
    return Response(
        stream_with_context(export.iter_csv(assignments.REPORT_COLUMNS, assignments.outstanding(unit))),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )
