"""Console views of corrections and year closing: thin views over lms/records/corrections.py and closing.py.

- /admin/people/<id>/records: one person's records of a year, each with 更正 and its certificate, for an
  admin or a unit admin overseeing the person (403 otherwise, 404 for nobody);
- /admin/records/<id>/reverse: the confirm form of a reversal (a reason; WTForms, CSRF);
- /admin/closing: the years closed in the viewer's subtree, closing one, re-opening one with a reason.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.accounts.models import Unit, User, utcnow
from lms.admin.access import roles_required
from lms.admin.navigation import OVERSEERS
from lms.extensions import db
from lms.records import closing, corrections, services
from lms.records.correction_forms import CloseYearForm, ReopenForm, ReverseForm
from lms.records.export import KIND_LABELS
from lms.records.models import TrainingRecord

bp = Blueprint("corrections", __name__)
closing_bp = Blueprint("closing", __name__, url_prefix="/admin/closing")


@bp.app_template_global("reversed_record_ids")
def reversed_record_ids(records) -> set[int]:
    """For templates listing records (我的学时): which of them have been reversed."""
    return corrections.reversed_ids(records)


def _overseen(person: User | None) -> User:
    if person is None:
        abort(404)
    if not corrections.may_correct(current_user, person):
        abort(403)
    return person


@bp.get("/admin/people/<int:user_id>/records")
@roles_required(*OVERSEERS)
def person_records(user_id):
    person = _overseen(db.session.get(User, user_id))
    try:
        year = services.report_year(request.args.get("year"))
    except services.BadYear as exc:
        message = _("年份应是 %(first)d 到 %(last)d 之间的数字。", first=exc.first, last=exc.last)
        return render_template("error.html", code=400, message=message), 400
    summary = services.my_hours(person, year)
    return render_template("records/person_records.html", person=person, summary=summary,
                           reversed=corrections.reversed_ids(summary["records"]), kind_labels=KIND_LABELS,
                           this_year=services.to_local(utcnow()).year)


@bp.route("/admin/records/<int:record_id>/reverse", methods=["GET", "POST"])
@roles_required(*OVERSEERS)
def reverse(record_id):
    record = db.session.get(TrainingRecord, record_id)
    _overseen(record.user if record is not None else None)
    form = ReverseForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            try:
                corrections.reverse_record(current_user, record, form.reason.data)
            except corrections.CorrectionError as exc:
                if exc.field == "reason":
                    form.reason.errors.append(exc.message)
                else:
                    form.form_errors.append(exc.message)
                    status = 409
            else:
                flash(_("已更正：撤销了“%(title)s”的 %(hours)s 学时。", title=record.title, hours=record.hours))
                return redirect(url_for("corrections.person_records", user_id=record.user_id,
                                        year=services.to_local(record.earned_at).year))
    return render_template("records/reverse.html", record=record, form=form, kind_labels=KIND_LABELS,
                           refusal=corrections.refusal(record)), status


# ---- closing a year ---------------------------------------------------------------------------

def _closing_page(close_form=None, reopen_form=None, reopen_id=None, status=200):
    if close_form is None:
        close_form = CloseYearForm(formdata=None, unit=current_user.unit.code,
                                   year=str(services.to_local(utcnow()).year - 1))
    own, above = closing.closings_for(current_user)
    return render_template("records/closing.html", form=close_form, own=own, above=above,
                           reopen_form=reopen_form or ReopenForm(formdata=None), reopen_id=reopen_id), status


@closing_bp.get("")
@roles_required(*OVERSEERS)
def index():
    return _closing_page()


@closing_bp.post("")
@roles_required(*OVERSEERS)
def close():
    form = CloseYearForm()
    if not form.validate_on_submit():
        return _closing_page(form, status=400)
    unit = Unit.query.filter_by(code=form.unit.data.strip()).first()
    if unit is None:
        form.unit.errors.append(_("没有这个单位编码"))
        return _closing_page(form, status=400)
    try:
        closing.close_year(current_user, unit, int(form.year.data))
    except PermissionError:
        form.unit.errors.append(_("这个单位不在您管辖的范围内"))
        return _closing_page(form, status=403)
    except closing.ClosingError as exc:
        getattr(form, exc.field).errors.append(exc.message)
        return _closing_page(form, status=409 if exc.conflict else 400)
    flash(_("已关账：%(year)s 年度，%(unit)s 及其下级单位。此后该年度不能再补录或更正学时，除非重新开放。",
            year=form.year.data.strip(), unit=unit.name))
    return redirect(url_for("closing.index"))


@closing_bp.post("/<int:closing_id>/reopen")
@roles_required(*OVERSEERS)
def reopen(closing_id):
    row = db.session.get(closing.ClosedYear, closing_id)
    if row is None:
        abort(404)
    if not closing.may_close(current_user, row.unit):
        abort(403)
    form = ReopenForm()
    if form.validate_on_submit():
        try:
            closing.reopen_year(current_user, row, form.reason.data)
        except closing.ClosingError as exc:
            form.reason.errors.append(exc.message)
            return _closing_page(reopen_form=form, reopen_id=row.id, status=409 if exc.conflict else 400)
        flash(_("已重新开放 %(year)s 年度（%(unit)s）。", year=row.year, unit=row.unit.name))
        return redirect(url_for("closing.index"))
    return _closing_page(reopen_form=form, reopen_id=row.id, status=400)
