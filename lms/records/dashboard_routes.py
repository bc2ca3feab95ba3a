"""/admin/dashboard (统计图表): thin views over lms/records/dashboard.py — the page, and each of its tables
as CSV (/admin/dashboard.csv?table=…, the same filters). Admins and unit admins, in their scope: asking
for a unit outside it (?unit=) is 403."""
from __future__ import annotations

import re

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from lms.accounts.scope import OutsideScope
from lms.accounts.units import unit_in_field
from lms.admin.access import roles_required
from lms.admin.navigation import OVERSEERS
from lms.audiences import AUDIENCES
from lms.records import dashboard, export, services

bp = Blueprint("dashboard", __name__, url_prefix="/admin")


@bp.app_template_filter("columns")
def columns(items, *names: str) -> list[tuple]:
    """Objects as tuples of the named attributes: the rows a chart macro of admin/_chart.html draws."""
    return [tuple(getattr(item, name) for name in names) for item in items]


class DashboardForm(FlaskForm):
    """GET filters (no state change, so no CSRF); every bad field gets its own message."""

    class Meta:
        csrf = False

    year = StringField(_l("年份"), validators=[Optional(), Length(max=8)])
    audience = SelectField(_l("人群"), choices=[("", _l("全部"))] + list(AUDIENCES.items()), validate_choice=False)
    unit = StringField(_l("单位编码"), validators=[Optional(), Length(max=64)])

    def validate_year(self, field):
        try:
            services.report_year(field.data)
        except services.BadYear as exc:
            raise ValidationError(_("年份应是 %(first)d 到 %(last)d 之间的数字。", first=exc.first, last=exc.last))

    def validate_audience(self, field):
        if field.data and field.data not in AUDIENCES:
            raise ValidationError(_("没有这个人群，请从列表中选择。"))


def _view(form: DashboardForm):
    """The view the filters ask for, or None (the form then carries the messages); 403 outside scope."""
    valid = form.validate()
    unit = unit_in_field(form.unit)
    if not valid or form.unit.errors:
        return None
    try:
        return dashboard.make_view(current_user, services.report_year(form.year.data), unit, form.audience.data)
    except OutsideScope:
        abort(403)


@bp.get("/dashboard")
@roles_required(*OVERSEERS)
def index():
    form = DashboardForm(request.args)
    view = _view(form)
    if view is None:
        return render_template("records/dashboard.html", form=form, board=None, crumbs=[]), 400
    if not form.year.data:
        form.year.data = str(view.year)
    return render_template("records/dashboard.html", form=form, board=dashboard.dashboard(view),
                           crumbs=dashboard.crumbs(current_user, view))


@bp.get("/dashboard.csv")
@roles_required(*OVERSEERS)
def download():
    form = DashboardForm(request.args)
    name = request.args.get("table", "")
    if name not in dashboard.TABLES:
        message = _("table 参数应是以下之一：%(names)s。", names="、".join(dashboard.TABLES))
        return render_template("error.html", code=400, message=message), 400
    view = _view(form)
    if view is None:
        return render_template("records/dashboard.html", form=form, board=None, crumbs=[]), 400
    columns, rows = dashboard.table(view, name)
    where = re.sub(r"[^A-Za-z0-9_-]", "_", view.focus.code) if view.focus is not None else "all"
    filename = f"tongji-{name}-{view.year}-{where}{'-' + view.audience if view.audience else ''}.csv"
    return Response(export.iter_csv(columns, rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
