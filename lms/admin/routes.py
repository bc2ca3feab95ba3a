"""The console's home (/admin) and the audit log (/admin/audit): thin views over lms/admin/services.py."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.accounts.models import User
from lms.admin import navigation, services
from lms.admin.access import roles_required
from lms.admin.forms import AuditFilterForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_global("admin_nav")
def admin_nav():
    return navigation.nav_items(current_user)


@bp.app_template_global("admin_url")
def admin_url(endpoint: str, **values) -> str | None:
    """url_for, or None when the endpoint is not registered (a section another part has not built)."""
    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None


@bp.get("")
@roles_required(*navigation.CONSOLE_ROLES)
def home():
    return render_template("admin/home.html", board=services.dashboard(current_user))


@bp.get("/audit")
@roles_required(*navigation.OVERSEERS)
def audit():
    form = AuditFilterForm(request.args)
    valid = form.validate()
    actor = None
    if valid and form.actor.data and form.actor.data.strip():
        actor = User.query.filter_by(username=form.actor.data.strip()).first()
        if actor is None:
            form.actor.errors.append(_("没有这个账号"))
            valid = False
    if not valid:
        return render_template("admin/audit.html", form=form, rows=[], names={}, next_before=None,
                               query={}), 400
    filters = services.AuditFilters(actor=actor, action=(form.action.data or "").strip(),
                                    target=(form.target.data or "").strip(), date_from=form.date_from.data,
                                    date_to=form.date_to.data, before=form.before.data)
    rows, next_before = services.audit_rows(current_user, filters)
    query = {key: value for key, value in request.args.items() if key != "before" and value}
    return render_template("admin/audit.html", form=form, rows=rows, names=services.target_names(rows),
                           next_before=next_before, query=query)
