"""Units in the console (/admin/units): the tree, a unit's page (rename, move, deactivate), adding units,
importing a tree, and the unit picker's search. Thin views over lms/accounts/units.py.

Every view needs a signed-in admin or unit admin (403 for anyone else); a unit outside the viewer's
subtree answers 404, as one that does not exist."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.accounts import units
from lms.accounts.bulk import ImportFileError
from lms.accounts.forms import ActionForm, UnitEditForm, UnitForm, UnitImportConfirmForm, UnitImportForm, UnitMoveForm
from lms.accounts.models import Unit
from lms.admin.access import roles_required, upload_for_roles
from lms.admin.navigation import OVERSEERS
from lms.extensions import db
from lms.media import upload_gate

bp = Blueprint("units", __name__, url_prefix="/admin/units")

IMPORT_MAX_BYTES = 8 * 1024 * 1024  # a county's tree is a few hundred kB
STAGE_PREFIX = "units"
SESSION_KEY = "unit_import"


@bp.app_template_global("unit_label")
def unit_label(code: str | None) -> str:
    """For the unit picker: the name of the unit whose code a field holds, if the viewer manages it."""
    if not getattr(current_user, "is_authenticated", False) or current_user.role not in units.MANAGER_ROLES:
        return ""
    return units.unit_label(current_user, code)


def _unit(unit_id: int) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None or not units.can_manage(current_user, unit):
        abort(404)
    return unit


def _show_error(form, exc: units.UnitError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors) + [str(exc)]
    else:
        form.form_errors.append(str(exc))


# ---- the tree ---------------------------------------------------------------------------------

@bp.get("")
@roles_required(*OVERSEERS)
def tree():
    root_id = request.args.get("root", type=int)
    root = _unit(root_id) if root_id else None
    expand = request.args.get("expand") == "1"
    return render_template("accounts/units.html", tree=units.unit_tree(current_user, root), root=root,
                           expand=expand)


@bp.get("/search")
@roles_required(*OVERSEERS)
def search():
    """The picker's JSON: [{id, code, name, kind, active, within}] of units the viewer manages."""
    found = units.search_units(current_user, request.args.get("q", ""),
                               include_inactive=request.args.get("inactive") == "1")
    return jsonify(found)


# ---- add, edit, move, deactivate --------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
@roles_required(*OVERSEERS)
def new():
    form = UnitForm()
    if request.method == "GET":
        parent = db.session.get(Unit, request.args.get("parent", type=int) or 0)
        if parent is not None and units.can_manage(current_user, parent):
            form.parent.data = parent.code
        elif current_user.role != "admin":
            form.parent.data = current_user.unit.code
    if form.validate_on_submit():
        try:
            parent_code = (form.parent.data or "").strip()
            parent = units.find_unit(current_user, parent_code) if parent_code else None
            unit = units.create_unit(current_user, form.code.data, form.name.data, form.kind.data, parent)
        except units.UnitError as exc:
            _show_error(form, exc)
        else:
            flash(_("已添加单位“%(name)s”。", name=unit.name))
            return redirect(url_for("units.unit", unit_id=unit.id))
    failed = request.method == "POST"
    return render_template("accounts/units_new.html", form=form), 400 if failed else 200


def _unit_page(unit: Unit, status: int = 200, edit_form=None, move_form=None, active_form=None):
    edit_form = edit_form or UnitEditForm(formdata=None, data={"name": unit.name, "kind": unit.kind})
    move_form = move_form or UnitMoveForm(formdata=None)
    root = units.managed_root(current_user)
    own_root = root is not None and root.id == unit.id
    return render_template("accounts/units_unit.html", unit=unit, info=units.unit_summary(unit),
                           edit_form=edit_form, move_form=move_form, active_form=active_form or ActionForm(),
                           own_root=own_root, kind_label=units.kind_label,
                           can_manage=lambda other: units.can_manage(current_user, other)), status


@bp.get("/<int:unit_id>")
@roles_required(*OVERSEERS)
def unit(unit_id):
    return _unit_page(_unit(unit_id))


@bp.post("/<int:unit_id>/edit")
@roles_required(*OVERSEERS)
def edit(unit_id):
    unit = _unit(unit_id)
    form = UnitEditForm()
    if form.validate_on_submit():
        try:
            changed = units.update_unit(current_user, unit, form.name.data, form.kind.data)
        except units.UnitError as exc:
            db.session.rollback()
            _show_error(form, exc)
        else:
            flash(_("已保存。") if changed else _("没有改动。"))
            return redirect(url_for("units.unit", unit_id=unit.id))
    return _unit_page(unit, 400, edit_form=form)


@bp.post("/<int:unit_id>/move")
@roles_required(*OVERSEERS)
def move(unit_id):
    unit = _unit(unit_id)
    form = UnitMoveForm()
    if form.validate_on_submit():
        try:
            moved = units.move_unit(current_user, unit, units.find_unit(current_user, form.parent.data))
        except units.UnitError as exc:
            db.session.rollback()
            _show_error(form, exc)
        else:
            db.session.refresh(unit)
            flash(_("已把“%(name)s”移到“%(parent)s”之下（共 %(n)d 个单位）。", name=unit.name,
                    parent=unit.parent.name, n=moved))
            return redirect(url_for("units.unit", unit_id=unit.id))
    return _unit_page(unit, 400, move_form=form)


@bp.post("/<int:unit_id>/deactivate")
@roles_required(*OVERSEERS)
def deactivate(unit_id):
    return _set_active(unit_id, False)


@bp.post("/<int:unit_id>/reactivate")
@roles_required(*OVERSEERS)
def reactivate(unit_id):
    return _set_active(unit_id, True)


def _set_active(unit_id: int, active: bool):
    unit = _unit(unit_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        changed = units.set_active(current_user, unit, active)
    except units.UnitError as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return _unit_page(unit, 400, active_form=form)
    if active:
        flash(_("已启用“%(name)s”及其下级单位（%(n)d 个）。", name=unit.name, n=changed))
    else:
        flash(_("已停用“%(name)s”及其下级单位（%(n)d 个）。人员和学时记录都保留，但不能再加入新的人员。",
                name=unit.name, n=changed))
    return redirect(url_for("units.unit", unit_id=unit.id))


# ---- import -----------------------------------------------------------------------------------

# before the body is read: only those who manage units send a file, and not a huge one
upload_gate.guard("units.import_units")(upload_for_roles(IMPORT_MAX_BYTES, *OVERSEERS))


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*OVERSEERS)
def import_units():
    """Step 1: upload and check. A good file is kept (for this session only) until step 2 confirms."""
    form = UnitImportForm()
    report, token = None, None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            token = units.stage_upload(upload, STAGE_PREFIX)
            report = units.import_units(units.staged_file(token, STAGE_PREFIX), current_user, dry_run=True)
        except ImportFileError as exc:
            form.file.errors = list(form.file.errors) + [str(exc)]
        if report is not None and report.ok and report.new:
            session[SESSION_KEY] = token
        else:
            _discard(token)
    status = 400 if form.errors or (report and not report.ok) else 200
    confirm = UnitImportConfirmForm(formdata=None, data={"token": token}) if report and report.ok and report.new else None
    return _import_page(form, report, confirm), status


@bp.post("/import/confirm")
@roles_required(*OVERSEERS)
def import_confirm():
    """Step 2: import the checked file — checked again, since units may have changed meanwhile."""
    form = UnitImportConfirmForm()
    token = session.get(SESSION_KEY)
    path = units.staged_file(token, STAGE_PREFIX) if form.validate_on_submit() and form.token.data == token else None
    if path is None:
        flash(_("导入文件已过期或已导入，请重新上传。"))
        return redirect(url_for("units.import_units"))
    try:
        report = units.import_units(path, current_user, source=_("网页上传"))
    except ImportFileError as exc:
        report = None
        flash(str(exc))
    session.pop(SESSION_KEY, None)
    _discard(token)
    if report is None or not report.ok:
        return _import_page(UnitImportForm(formdata=None), report, None), 400
    flash(_("已导入 %(n)d 个单位。", n=report.created) + (
        _("另有 %(m)d 个单位已存在且相同，未改动。", m=len(report.unchanged)) if report.unchanged else ""))
    return redirect(url_for("units.tree"))


def _import_page(form, report, confirm):
    return render_template("accounts/units_import.html", form=form, report=report, confirm=confirm,
                           unit_kinds=[str(label) for label in units.KINDS.values()], kind_label=units.kind_label)


def _discard(token: str | None) -> None:
    path = units.staged_file(token, STAGE_PREFIX)
    if path is not None:
        path.unlink(missing_ok=True)


@bp.get("/import/template.csv")
@roles_required(*OVERSEERS)
def import_template():
    return Response(units.template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=units-template.csv"})
