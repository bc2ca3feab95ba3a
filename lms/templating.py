"""Jinja helpers shared by every domain's templates."""
from decimal import Decimal

from flask_babel import gettext as _

from lms.audiences import AUDIENCES, audience_label
from lms.records.services import to_local


def format_hours(value) -> str:
    value = Decimal(value or 0).quantize(Decimal("0.01"))
    return f"{value.normalize():f}"


def init_app(app):
    from flask_babel import get_locale

    app.jinja_env.globals.update(AUDIENCES=AUDIENCES, audience_label=audience_label, get_locale=get_locale)
    app.jinja_env.filters["hours"] = format_hours
    app.jinja_env.filters["local_time"] = lambda dt: to_local(dt).strftime("%Y-%m-%d %H:%M") if dt else ""

    @app.errorhandler(403)
    def forbidden(error):
        from flask import render_template

        return render_template("error.html", code=403, message=_("您没有权限访问这个页面。")), 403

    @app.errorhandler(404)
    def not_found(error):
        from flask import render_template

        return render_template("error.html", code=404, message=_("页面不存在，或课程已下线。")), 404

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        from flask import jsonify, render_template, request

        if request.is_json:
            return jsonify(error="csrf", message=_("安全校验失败，请刷新页面后重试。")), 400
        return render_template("error.html", code=400, message=_("安全校验失败（页面已过期），请返回并刷新后重试。")), 400
