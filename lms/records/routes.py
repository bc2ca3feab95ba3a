import tempfile
from datetime import date

from flask import Blueprint, Response, abort, render_template, request, send_file, stream_with_context
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.accounts.models import Unit
from lms.accounts.scope import OutsideScope, scoped_unit
from lms.records import export, services
from lms.records.forms import ExportForm

bp = Blueprint("records", __name__)


@bp.get("/my/hours")
@login_required
def my_hours():
    try:
        year = services.report_year(request.args.get("year"))
    except services.BadYear as exc:
        message = _("年份应是 %(first)d 到 %(last)d 之间的数字。", first=exc.first, last=exc.last)
        return render_template("error.html", code=400, message=message), 400
    return render_template("records/my_hours.html", summary=services.my_hours(current_user, year))


def _require_exporter():
    if not current_user.can_export_hours:
        abort(403)


def _resolve_unit(form: ExportForm):
    """The unit to export: admins any (or all), unit admins their own subtree only (403 beyond it)."""
    unit = None
    if form.unit.data:
        unit = Unit.query.filter_by(code=form.unit.data.strip()).first()
        if unit is None:
            form.unit.errors.append(_("单位编码不存在"))
            return None
    try:
        return scoped_unit(current_user, unit)
    except OutsideScope:
        abort(403)


@bp.get("/admin/hours")
@login_required
def export_page():
    _require_exporter()
    return render_template("records/export.html", form=ExportForm())


@bp.get("/admin/hours/export")
@login_required
def export_download():
    _require_exporter()
    form = ExportForm(request.args)
    valid = form.validate()
    unit = _resolve_unit(form)
    if not valid or form.unit.errors:
        return render_template("records/export.html", form=form), 400
    columns, _query, rows = export.export_rows(form.summary.data, form.date_from.data, form.date_to.data, unit,
                                               form.audience.data or None)
    stem = f"xueshi-{form.date_from.data or 'all'}-{form.date_to.data or date.today()}"
    if form.fmt.data == "xlsx":
        spool = tempfile.TemporaryFile()
        export.write_xlsx(spool, columns, rows)
        spool.seek(0)
        return send_file(spool, as_attachment=True, download_name=f"{stem}.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(
        stream_with_context(export.iter_csv(columns, rows)),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )
