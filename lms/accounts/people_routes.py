"""People in the console (/admin/people) and everyone's own password (/account/password): thin views
over lms/accounts/people.py.

Every /admin/people view needs a signed-in admin or unit admin (403 for anyone else); a person outside
the viewer's subtree answers 403, one who does not exist 404, and a change to someone the viewer may
see but not manage (an admin, a peer unit admin, themselves) 403."""
from __future__ import annotations

from flask import (Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from lms.accounts import people
from lms.accounts.bulk import ImportFileError
from lms.accounts.forms import (ActionForm, ImportPeopleForm, NewPersonForm, OwnPasswordForm, PeopleFilterForm,
                                PersonForm)
from lms.accounts.models import User
from lms.accounts.routes import landing_page
from lms.accounts.scope import OutsideScope
from lms.admin.access import roles_required, upload_for_roles
from lms.admin.navigation import OVERSEERS
from lms.extensions import db
from lms.media import upload_gate

bp = Blueprint("people", __name__, url_prefix="/admin/people")
account_bp = Blueprint("account", __name__, url_prefix="/account")

IMPORT_MAX_BYTES = 8 * 1024 * 1024  # 50,000 rows of CSV are about 3 MB
NO_STORE = {"Cache-Control": "no-store"}  # pages that show a password once


def _person(user_id: int) -> User:
    person = db.session.get(User, user_id)
    if person is None:
        abort(404)
    if not people.visible(current_user, person):
        abort(403)
    return person


def _managed(user_id: int) -> User:
    person = _person(user_id)
    if not people.may_manage(current_user, person):
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    return person


def _show_error(form, exc: people.PersonError) -> None:
    getattr(form, exc.field, form.full_name).errors.append(exc.message)


def _has_errors(form) -> bool:
    return any(field.errors for field in form)


# ---- the list ---------------------------------------------------------------------------------

@bp.get("")
@roles_required(*OVERSEERS)
def index():
    form = PeopleFilterForm(request.args)
    status = 200 if form.validate() else 400
    unit = None
    if status == 200 and (form.unit.data or "").strip():
        unit = people.unit_by_code(form.unit.data)
        if unit is None:
            form.unit.errors.append(_("没有这个单位编码"))
            status = 400
    filters = people.PeopleFilters(
        q=form.q.data or "", unit=unit, audience=form.audience.data or None, role=form.role.data or None,
        active={"1": True, "0": False}.get(form.active.data), must_change=bool(form.must_change.data),
        after=(form.after_name.data, form.after_id.data) if form.after_id.data and form.after_name.data else None)
    page = None
    if status == 200:
        try:
            page = people.people_page(current_user, filters)
        except OutsideScope:
            form.unit.errors.append(_("这个单位不在您管辖的范围内"))
            status = 403
    query = {key: value for key, value in request.args.items() if key not in ("after_name", "after_id") and value}
    return render_template("accounts/people.html", form=form, page=page, query=query,
                           role_name=people.role_name), status


# ---- create and edit --------------------------------------------------------------------------

def _person_data(form) -> people.PersonData:
    return people.PersonData(full_name=form.full_name.data, audience=form.audience.data, role=form.role.data,
                             unit_code=form.unit.data, phone=form.phone.data or "",
                             username=getattr(form, "username", None) and form.username.data or "",
                             password=getattr(form, "password", None) and form.password.data or "")


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*OVERSEERS)
def create():
    form = NewPersonForm(roles=people.assignable_roles(current_user))
    if request.method == "GET":
        form.unit.data = request.args.get("unit") or current_user.unit.code
        form.role.data = "learner"
    elif form.validate_on_submit():
        try:
            person, password = people.create_person(current_user, _person_data(form))
        except people.PersonError as exc:
            db.session.rollback()
            _show_error(form, exc)
        else:
            if password:
                return render_template("accounts/people_password.html", person=person, password=password,
                                       created=True), 200, NO_STORE
            flash(_("已创建 %(name)s。", name=person.full_name))
            return redirect(url_for("people.person", user_id=person.id))
    return render_template("accounts/people_form.html", form=form, person=None), 400 if _has_errors(form) else 200


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@roles_required(*OVERSEERS)
def person(user_id):
    person = _person(user_id)
    manageable = people.may_manage(current_user, person)
    if request.method == "POST" and not manageable:
        abort(403)
    saved = {"full_name": person.full_name, "phone": person.phone or "", "audience": person.audience,
             "role": person.role, "unit": person.unit.code}
    form = PersonForm(data=saved, roles=people.assignable_roles(current_user) if manageable else (person.role,))
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                changes = people.update_person(current_user, person, _person_data(form))
            except people.PersonError as exc:
                db.session.rollback()
                _show_error(form, exc)
            else:
                flash(_("已保存。") if changes else _("没有改动。"))
                return redirect(url_for("people.person", user_id=person.id))
    records, hours = people.record_totals(person)
    return render_template("accounts/people_form.html", form=form, person=person, manageable=manageable,
                           action_form=ActionForm(), records=records, hours=hours,
                           locked=bool(people.locked_ids([person])), role_name=people.role_name), \
        400 if _has_errors(form) else 200


@bp.post("/<int:user_id>/deactivate")
@roles_required(*OVERSEERS)
def deactivate(user_id):
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/reactivate")
@roles_required(*OVERSEERS)
def reactivate(user_id):
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool):
    person = _managed(user_id)
    try:
        people.set_active(current_user, person, active)
    except people.PersonError as exc:
        db.session.rollback()
        flash(str(exc.message))
    else:
        flash(_("已恢复 %(name)s 的账号。", name=person.full_name) if active
              else _("已停用 %(name)s：不能再登录，学习记录都保留。", name=person.full_name))
    return redirect(url_for("people.person", user_id=person.id))


@bp.post("/<int:user_id>/reset-password")
@roles_required(*OVERSEERS)
def reset_password(user_id):
    person = _managed(user_id)
    password = people.reset_password(current_user, person)
    return render_template("accounts/people_password.html", person=person, password=password, created=False), \
        200, NO_STORE


@bp.post("/<int:user_id>/unlock")
@roles_required(*OVERSEERS)
def unlock(user_id):
    person = _managed(user_id)
    lifted = people.unlock(current_user, person)
    flash(_("已解除 %(name)s 的登录锁定。", name=person.full_name) if lifted
          else _("%(name)s 没有被锁定。", name=person.full_name))
    return redirect(url_for("people.person", user_id=person.id))


# ---- import -----------------------------------------------------------------------------------

# before the body is read: only those who manage people send a list, and not a huge one
upload_gate.guard("people.import_people")(upload_for_roles(IMPORT_MAX_BYTES, *OVERSEERS))


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*OVERSEERS)
def import_people():
    form = ImportPeopleForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            report = people.import_upload(current_user, upload.filename, upload.read(), dry_run=form.dry_run.data)
        except ImportFileError as exc:
            form.file.errors.append(str(exc))
    status = 400 if _has_errors(form) or (report and report.problems) else 200
    return render_template("accounts/people_import.html", form=form, report=report, dry_run=form.dry_run.data,
                           role_name=people.role_name), status, NO_STORE


@bp.get("/import/template.csv")
@roles_required(*OVERSEERS)
def import_template():
    return Response(people.template_csv(current_user), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=people-template.csv"})


# ---- one's own password -----------------------------------------------------------------------

@account_bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    form = OwnPasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            people.change_own_password(user, form.current_password.data, form.password.data, request.remote_addr)
        except people.PersonError as exc:
            db.session.rollback()
            getattr(form, exc.field).errors.append(exc.message)
        else:
            login_user(user)  # this session goes on under the new session version; every other one has ended
            flash(_("密码已修改。其他设备上的登录已失效，需要用新密码重新登录。"))
            return redirect(landing_page(user))
    return render_template("accounts/password.html", form=form,
                           forced=current_user.must_change_password), 400 if _has_errors(form) else 200


# endpoints a user who must change their password can still reach
MUST_CHANGE_EXEMPT = {"static", "account.password", "accounts.logout", "accounts.login"}
MUST_CHANGE_EXEMPT_BLUEPRINTS = {"elder", "health"}  # font size, 长辈版, help; the health check


@account_bp.before_app_request
def _send_to_password_change():
    """After an administrator's reset (or with a generated first password) the next page is the change
    page. Not on a class tablet: those learners sign in with their PIN, not their password."""
    if (request.endpoint in MUST_CHANGE_EXEMPT or request.blueprint in MUST_CHANGE_EXEMPT_BLUEPRINTS
            or session.get("tablet_learner") or not current_user.is_authenticated
            or not current_user.must_change_password):
        return None
    if request.method == "GET" and not request.is_json:
        return redirect(url_for("account.password"))
    return jsonify(error="must_change_password", message=_("请先修改密码。")), 403
