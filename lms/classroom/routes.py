"""Tablet class sign-in. A teacher opens the tablet for a class; learners tap their name card and
type a 4-digit PIN; 换人 signs them out and shows the roster again."""
import time
from pathlib import Path

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request,
                   send_file, session, url_for)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm

from lms.accounts.models import Unit, User
from lms.classroom import services
from lms.elder.services import continue_target
from lms.extensions import db

bp = Blueprint("classroom", __name__)


def _tablet_unit() -> Unit | None:
    tablet = session.get("tablet")
    return db.session.get(Unit, tablet["unit"]) if tablet else None


def _teacher_unit(code) -> Unit:
    if not services.is_teacher(current_user):
        abort(403)
    unit = Unit.query.filter_by(code=code).first_or_404()
    if not services.can_manage(current_user, unit):
        abort(403)
    return unit


@bp.before_app_request
def _tablet_idle_timeout():
    """A learner signed in on a shared tablet is signed out after a quiet spell (the page warns first,
    with a large 继续 button and at least 20 s to press it)."""
    if not session.get("tablet_learner") or request.endpoint == "static":
        return None
    if not current_user.is_authenticated:
        session.pop("tablet_learner", None)
        return None
    now = time.time()
    seen = session.get("tablet_seen", now)
    if now - seen > current_app.config.get("TABLET_IDLE_SECONDS", 15 * 60):
        logout_user()
        session.pop("tablet_learner", None)
        if request.is_json or request.path.startswith("/api/") or request.method != "GET":
            return jsonify(error="signed_out", message="长时间没有操作，已自动退出，请重新选择名字登录。"), 401
        flash("长时间没有操作，为保护您的账户已自动退出。请点您的名字重新登录。")
        return redirect(url_for("classroom.roster"))
    session["tablet_seen"] = now
    return None


# --- teacher -------------------------------------------------------------------------------------

@bp.get("/classroom")
@login_required
def classes():
    if not services.is_teacher(current_user):
        abort(403)
    return render_template("classroom/classes.html", classes=services.classes_for(current_user),
                           form=FlaskForm(), tablet_unit=_tablet_unit())


@bp.route("/classroom/<code>", methods=["GET", "POST"])
@login_required
def manage(code):
    unit = _teacher_unit(code)
    form = FlaskForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        learner = db.session.get(User, request.form.get("user_id", type=int) or 0)
        if learner is None or learner.unit_id != unit.id:
            abort(404)
        try:
            if "photo" in request.files and request.files["photo"].filename:
                services.save_photo(learner, request.files["photo"].read())
                flash(f"已更新 {learner.full_name} 的照片。")
            else:
                services.set_pin(learner, request.form.get("pin", ""))
                flash(f"已为 {learner.full_name} 设置新的 PIN。")
        except services.ClassroomError as exc:
            flash(f"{learner.full_name}：{exc}")
        return redirect(url_for("classroom.manage", code=code))
    return render_template("classroom/manage.html", unit=unit, learners=services.roster(unit), form=form)


@bp.post("/classroom/<code>/open")
@login_required
def open_tablet(code):
    unit = _teacher_unit(code)
    if not FlaskForm().validate_on_submit():
        abort(400)
    teacher_id = current_user.id
    logout_user()  # the tablet is now the class's: the teacher is signed out
    session["tablet"] = {"unit": unit.id, "by": teacher_id}
    session.permanent = True
    return redirect(url_for("classroom.roster"))


@bp.post("/classroom/close")
def close_tablet():
    if not FlaskForm().validate_on_submit():
        abort(400)
    if not services.is_teacher(current_user):
        abort(403)
    session.pop("tablet", None)
    session.pop("tablet_learner", None)
    flash("已关闭本平板的班级登录。")
    return redirect(url_for("classroom.classes"))


# --- the tablet ------------------------------------------------------------------------------------

@bp.get("/tablet")
def roster():
    unit = _tablet_unit()
    if unit is None:
        return render_template("classroom/not_open.html"), 404
    if current_user.is_authenticated and session.get("tablet_learner"):
        return redirect(url_for("courses.catalogue"))
    return render_template("classroom/roster.html", unit=unit, learners=services.roster(unit))


@bp.route("/tablet/<int:user_id>", methods=["GET", "POST"])
def pin(user_id):
    unit = _tablet_unit()
    if unit is None:
        return redirect(url_for("classroom.roster"))
    learner = db.session.get(User, user_id)
    if learner is None or learner.unit_id != unit.id or learner.role != "learner" or not learner.active:
        abort(404)
    form = FlaskForm()
    error, status = None, 200
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            if services.verify_pin(learner, request.form.get("pin", "")):
                if current_user.is_authenticated:
                    logout_user()
                login_user(learner)
                session["tablet_learner"] = True
                session["tablet_seen"] = time.time()
                target = continue_target(learner.id)
                if target:
                    return redirect(url_for("courses.lesson", slug=target.course.slug,
                                            lesson_slug=target.lesson.slug))
                return redirect(url_for("courses.catalogue"))
            error = f"PIN 不对，请再试一次（还可以试 {services.pins_left(learner)} 次）。"
            status = 400
        except services.ClassroomError as exc:
            error, status = str(exc), 403 if isinstance(exc, services.PinLocked) else 400
    elif learner.pin_locked:
        error = "输错次数太多，已锁定。请老师帮您重新设置 PIN。"
    return render_template("classroom/pin.html", unit=unit, learner=learner, form=form, error=error,
                           locked=learner.pin_locked, has_pin=bool(learner.pin_hash)), status


@bp.post("/tablet/switch")
def switch():
    """换人: sign the learner out and show the class roster for the next one."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    if current_user.is_authenticated:
        logout_user()
    session.pop("tablet_learner", None)
    return redirect(url_for("classroom.roster"))


@bp.get("/tablet/photo/<int:user_id>")
def photo(user_id):
    learner = db.session.get(User, user_id)
    if learner is None or not learner.photo_path:
        abort(404)
    unit = _tablet_unit()
    allowed = (unit is not None and learner.unit_id == unit.id) or (
        services.is_teacher(current_user) and services.can_manage(current_user, learner.unit))
    if not allowed:
        abort(404)
    path = Path(current_app.config["DATA_DIR"]) / learner.photo_path
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=3600)
