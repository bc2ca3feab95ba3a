"""Offline activities: the console (/admin/activities — list, create, edit, roster, QR screen, paper
list import) and the learner's scan (/activities/scan/<token>). Thin views over services.

Console views need a signed-in organiser (admin, unit admin, instructor; 403 for anyone else); an
activity the viewer may not organise answers 404, as one that does not exist."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.accounts.bulk import ImportFileError
from lms.accounts.models import User
from lms.accounts.scope import oversight_root
from lms.activities import services
from lms.activities.forms import ActivityForm, PaperImportForm, RosterFilterForm, TickForm
from lms.activities.models import OfflineActivity
from lms.admin.access import roles_required
from lms.admin.forms import show_field_error
from lms.classroom.services import classes_for
from lms.extensions import db
from lms.media import upload_gate
from lms.records.services import to_local
from lms.templating import format_hours

bp = Blueprint("activities", __name__)

ORGANISERS = services.ORGANISER_ROLES
IMPORT_MAX_BYTES = 2 * 1024 * 1024  # a signed list of a few thousand names is a few hundred kB
LIST_PAGE = 50
NO_STORE = {"Cache-Control": "no-store"}


@bp.app_template_global("activity_kind")
def activity_kind(code: str) -> str:
    return services.kind_label(code)


def _activity(activity_id: int) -> OfflineActivity:
    activity = db.session.get(OfflineActivity, activity_id)
    if activity is None or not services.may_organise(current_user, activity.unit):
        abort(404)
    return activity


def _has_errors(form) -> bool:
    return any(field.errors for field in form)


# ---- the list, create and edit ------------------------------------------------------------------

@bp.get("/admin/activities")
@roles_required(*ORGANISERS)
def index():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    query = services.activities_query(current_user)
    activities = query.offset((page - 1) * LIST_PAGE).limit(LIST_PAGE + 1).all()
    more = len(activities) > LIST_PAGE
    activities = activities[:LIST_PAGE]
    counts = services.attendance_counts([a.id for a in activities])
    return render_template("activities/index.html", activities=activities, counts=counts, page=page, more=more,
                           root=oversight_root(current_user))


def _data(form: ActivityForm) -> services.ActivityData:
    return services.ActivityData(title=form.title.data or "", kind=form.kind.data, starts_local=form.starts_at.data,
                                 ends_local=form.ends_at.data, place=form.place.data or "",
                                 unit_code=(form.unit.data or "").strip(), audiences=form.audiences.data or [],
                                 hours=form.hours.data)


def _form_page(form, activity=None):
    classes = None
    if current_user.role == "instructor":  # the unit search is for administrators: a teacher picks a class
        classes = classes_for(current_user)
        form.unit.render_kw = {"list": "teacher-classes"}
    credited = services.attendance_count(activity) if activity is not None else 0
    return render_template("activities/form.html", form=form, activity=activity, classes=classes,
                           credited=credited), 400 if _has_errors(form) else 200


@bp.route("/admin/activities/new", methods=["GET", "POST"])
@roles_required(*ORGANISERS)
def create():
    form = ActivityForm()
    if request.method == "GET":
        form.unit.data = current_user.unit.code if current_user.role != "instructor" else ""
        form.kind.data = "lecture"
    elif form.validate_on_submit():
        try:
            activity = services.create_activity(current_user, _data(form))
        except services.ActivityError as exc:
            db.session.rollback()
            show_field_error(form, exc)
        else:
            flash(_("已创建活动“%(title)s”。", title=activity.title))
            return redirect(url_for("activities.attendance", activity_id=activity.id))
    return _form_page(form)


@bp.route("/admin/activities/<int:activity_id>/edit", methods=["GET", "POST"])
@roles_required(*ORGANISERS)
def edit(activity_id):
    activity = _activity(activity_id)
    saved = {"title": activity.title, "kind": activity.kind, "place": activity.place, "unit": activity.unit.code,
             "audiences": activity.audiences, "hours": activity.hours,
             "starts_at": to_local(activity.starts_at).replace(tzinfo=None),
             "ends_at": to_local(activity.ends_at).replace(tzinfo=None)}
    form = ActivityForm(data=saved)
    if request.method == "POST" and form.validate_on_submit():
        try:
            changed = services.update_activity(current_user, activity, _data(form))
        except services.ActivityError as exc:
            db.session.rollback()
            activity = _activity(activity_id)
            show_field_error(form, exc)
        else:
            flash(_("已保存。") if changed else _("没有改动。"))
            return redirect(url_for("activities.attendance", activity_id=activity.id))
    return _form_page(form, activity)


# ---- attendance: the roster ---------------------------------------------------------------------

def _roster_query(source) -> dict:
    """The roster's search and page, to come back to after a tick."""
    return {key: source.get(key) for key in ("q", "after_name", "after_id") if source.get(key)}


@bp.get("/admin/activities/<int:activity_id>")
@roles_required(*ORGANISERS)
def attendance(activity_id):
    activity = _activity(activity_id)
    form = RosterFilterForm(request.args)
    status, page = 200, None
    if form.validate():
        after = (form.after_name.data, form.after_id.data) if form.after_id.data and form.after_name.data else None
        page = services.roster_page(current_user, activity, (form.q.data or "").strip(), after)
    else:
        status = 400
    query = {key: value for key, value in request.args.items() if key == "q" and value}
    return render_template("activities/attendance.html", activity=activity, form=form, page=page, query=query,
                           here=_roster_query(request.args), credited=services.attendance_count(activity),
                           not_started=services.not_started(activity), tick_form=TickForm()), status


@bp.post("/admin/activities/<int:activity_id>/attend")
@roles_required(*ORGANISERS)
def tick(activity_id):
    activity = _activity(activity_id)
    form = TickForm()
    if not form.validate_on_submit():
        abort(400)
    back = redirect(url_for("activities.attendance", activity_id=activity.id, **_roster_query(request.form))
                    + f"#person-{form.user_id.data}")
    person = db.session.get(User, form.user_id.data)
    if person is None:
        abort(404)
    if services.not_started(activity):
        flash(_("活动还没开始，不能签到。"))
        return back
    try:
        credit = services.credit_attendance(activity, person, current_user, "roster")
    except services.AttendanceRefused as exc:
        db.session.rollback()
        flash(exc.message)
    else:
        flash(_("%(name)s 已签到，记 %(hours)s 学时。", name=person.full_name, hours=format_hours(credit.record.hours))
              if credit.status == "credited" else _("%(name)s 已签到过。", name=person.full_name))
    return back


# ---- attendance: the QR code at the venue -------------------------------------------------------

def _qr_state(activity: OfflineActivity) -> dict:
    token = services.make_token(activity)
    url = url_for("activities.scan", token=token, _external=True)
    now = services.clock(None)
    if now < activity.starts_at:
        state = _("活动还没开始：开始后才能扫码签到")
    elif now > activity.ends_at:
        state = _("活动已结束，扫码签到已关闭")
    else:
        state = _("请用手机扫码签到")
    return {"url": url, "svg": services.qr_svg(url), "refresh_in": services.seconds_left(),
            "open": activity.starts_at <= now <= activity.ends_at, "state": state,
            "attended": services.attendance_count(activity)}


@bp.get("/admin/activities/<int:activity_id>/qr")
@roles_required(*ORGANISERS)
def show_qr(activity_id):
    activity = _activity(activity_id)
    return render_template("activities/qr.html", activity=activity, qr=_qr_state(activity)), 200, NO_STORE


@bp.get("/admin/activities/<int:activity_id>/qr.json")
@roles_required(*ORGANISERS)
def qr_json(activity_id):
    """The code to show now (the screen's script asks again when it changes)."""
    return jsonify(_qr_state(_activity(activity_id))), 200, NO_STORE


@bp.get("/activities/scan/<token>")
@login_required
def scan(token):
    result = services.scan(token, current_user._get_current_object())
    status = 200 if result.status in ("credited", "already") else 400 if result.status == "invalid" else 409 \
        if result.status in ("expired", "closed") else 403
    return render_template("activities/scan.html", result=result), status, NO_STORE


# ---- attendance: the signed paper list ----------------------------------------------------------

@upload_gate.guard("activities.import_paper")
def _judge_paper_upload(activity_id) -> int:
    """Before the body is read: only an organiser of this activity sends a list, and a small one."""
    if current_user.role not in ORGANISERS:
        abort(403)
    _activity(activity_id)
    return IMPORT_MAX_BYTES


@bp.route("/admin/activities/<int:activity_id>/import", methods=["GET", "POST"])
@roles_required(*ORGANISERS)
def import_paper(activity_id):
    activity = _activity(activity_id)
    form = PaperImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            report = services.import_paper(current_user, activity, upload.filename, upload.read(),
                                           dry_run=form.dry_run.data)
        except ImportFileError as exc:
            form.file.errors.append(str(exc))
        except services.ActivityError as exc:
            form.file.errors.append(str(exc.message))
            report = None
    status = 400 if _has_errors(form) or (report and report.bad_rows) else 200
    return render_template("activities/import.html", activity=activity, form=form, report=report,
                           dry_run=form.dry_run.data), status, NO_STORE


@bp.get("/admin/activities/<int:activity_id>/import/template.csv")
@roles_required(*ORGANISERS)
def paper_template(activity_id):
    activity = _activity(activity_id)
    return Response(services.paper_template(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=activity-{activity.id}-signin.csv"})
