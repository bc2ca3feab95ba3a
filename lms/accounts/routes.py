from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from lms.accounts import session_user
from lms.accounts.forms import LoginForm
from lms.accounts.models import User
from lms.accounts.services import SignInThrottled, authenticate, sign_out
from lms.admin.navigation import CONSOLE_ROLES
from lms.extensions import db, login_manager

bp = Blueprint("accounts", __name__)


@login_manager.user_loader
def load_user(session_user_id: str):
    """The user of a session cookie, unless that session was ended (User.get_id carries the version)."""
    user_id, _colon, version = session_user_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    if request.endpoint in session_user.ENDPOINTS:  # a heartbeat: a few columns, no ORM (session_user.py)
        user = session_user.load(int(user_id))
    else:
        user = db.session.get(User, int(user_id))
    return user if user is not None and user.session_version == int(version) else None


def landing_page(user) -> str:
    """Where a user lands after signing in: the console for those who run the programme, else the catalogue."""
    return url_for("admin.home") if user.role in CONSOLE_ROLES else url_for("courses.catalogue")


def _safe_next(target: str | None, user) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return landing_page(user)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(landing_page(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data, request.remote_addr)
        except SignInThrottled as exc:
            form.password.errors.append(_("尝试次数太多，请 %(seconds)s 秒后再试。", seconds=exc.retry_after))
            return (render_template("accounts/login.html", form=form), 429,
                    {"Retry-After": str(exc.retry_after)})
        if user is None:
            form.password.errors.append(_("账号或密码不正确"))
        else:
            login_user(user)
            return redirect(_safe_next(request.args.get("next"), user))
    return render_template("accounts/login.html", form=form), 200 if not form.errors else 400


@bp.post("/logout")
@login_required
def logout():
    sign_out()
    flash(_("您已退出登录。"))
    return redirect(url_for("accounts.login"))
