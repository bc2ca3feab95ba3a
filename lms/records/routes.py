import tempfile
from datetime import date

from flask import (Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, send_file,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.accounts.models import Unit
from lms.accounts.scope import OutsideScope, scoped_unit
from lms.records import export_jobs, export_sql, services
from lms.records.forms import ExportForm
from lms.records.xlsx import MAX_ROWS

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
    return render_template("records/export.html", form=ExportForm(), jobs=export_jobs.recent_jobs(current_user))


@bp.route("/admin/hours/export", methods=["GET", "POST"])
@login_required
def export_download():
    """Count the rows first: up to EXPORT_INLINE_MAX_ROWS download at once; more become a background job
    — asked for by POST (CSRF-checked), so a GET link to a large export shows the form saying so."""
    _require_exporter()
    form = ExportForm(request.form if request.method == "POST" else request.args)
    valid = form.validate()
    unit = _resolve_unit(form)
    if not valid or form.unit.errors:
        return _page(form), 400
    filters = export_sql.Filters(form.date_from.data, form.date_to.data, unit, form.audience.data or None)
    summary, fmt = bool(form.summary.data), form.fmt.data
    total = export_sql.count(summary, filters)
    if fmt == "xlsx" and total >= MAX_ROWS:
        form.fmt.errors.append(_("共 %(rows)d 行，超过 Excel 一张工作表的上限（%(limit)d 行），请改用 CSV 或缩小范围。",
                                 rows=total, limit=MAX_ROWS - 1))
        return _page(form), 400
    if total > current_app.config["EXPORT_INLINE_MAX_ROWS"]:
        if request.method != "POST":
            return _page(form, large=total)
        job = export_jobs.create_job(current_user, filters, fmt, summary, "zh", total)
        return redirect(url_for("records.export_job", job_id=job.id), 303)
    stem = f"xueshi-{form.date_from.data or 'all'}-{form.date_to.data or date.today()}"
    if fmt == "xlsx":
        spool = tempfile.TemporaryFile()
        export_sql.write_xlsx(spool, summary, filters)
        spool.seek(0)
        return send_file(spool, as_attachment=True, download_name=f"{stem}.xlsx", mimetype=export_jobs.MIMETYPES["xlsx"])
    return Response(
        export_sql.csv_chunks(summary, filters),  # prepared now, streamed without the request context
        mimetype=export_jobs.MIMETYPES["csv"],
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )


def _page(form, large: int | None = None):
    return render_template("records/export.html", form=form, large=large,
                           inline_max=current_app.config["EXPORT_INLINE_MAX_ROWS"],
                           jobs=export_jobs.recent_jobs(current_user))


def _own_job(job_id: int):
    """The signed-in exporter's own job; 404 for anyone else's (and for ids that do not exist)."""
    _require_exporter()
    job = export_jobs.job_for(current_user, job_id)
    if job is None:
        abort(404)
    return job


@bp.get("/admin/hours/jobs/<int:job_id>")
@login_required
def export_job(job_id: int):
    return render_template("records/export_job.html", job=_own_job(job_id))


@bp.get("/admin/hours/jobs/<int:job_id>/status")
@login_required
def export_job_status(job_id: int):
    job = _own_job(job_id)
    return jsonify(status=job.status, label=job.label, done=job.rows_done, total=job.rows_total,
                   percent=job.percent, expired=job.expired, error=job.error,
                   download_url=url_for("records.export_job_file", job_id=job.id) if job.downloadable else None)


@bp.get("/admin/hours/jobs/<int:job_id>/download")
@login_required
def export_job_file(job_id: int):
    job = _own_job(job_id)
    path = export_jobs.file_path(job) if job.downloadable else None
    if path is None:  # not ready, failed or expired: the job page says which
        return redirect(url_for("records.export_job", job_id=job.id))
    return send_file(path, as_attachment=True, download_name=job.download_name, mimetype=export_jobs.MIMETYPES[job.fmt])
