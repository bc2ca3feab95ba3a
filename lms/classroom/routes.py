"""Tablet class sign-in. A teacher opens the tablet for a class; learners tap their name card and
type a 4-digit PIN; 换人 signs them out and shows the roster again."""
import secrets
import time
from pathlib import Path

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request,
                   send_file, session, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm

from lms.accounts import people
from lms.accounts.models import Unit, User
from lms.accounts.services import sign_out
from lms.classroom import help as help_requests
from lms.classroom import services
from lms.classroom.forms import AddLearnerForm
from lms.elder.services import continue_target
from lms.extensions import db
from lms.media import upload_gate

bp = Blueprint("classroom", __name__)
PHOTO_FORM_OVERHEAD = 64 * 1024  # the PIN/user fields, CSRF token and multipart headers around a photo


def _tablet_unit() -> Unit | None:
    tablet = session.get("tablet")
    return db.session.get(Unit, tablet["unit"]) if tablet else None


def _tablet_id() -> str:
    """Which tablet this is, for counting wrong PINs per tablet: set when a teacher opens it (signed
    into the session cookie, so a copied cookie is the same tablet)."""
    tablet = session["tablet"]
    return tablet.get("id") or f"{tablet['unit']}-{tablet['by']}"


def _teacher_unit(code) -> Unit:
    if not services.is_teacher(current_user):
        abort(403)
    unit = Unit.query.filter_by(code=code).first_or_404()
    if not services.can_manage(current_user, unit):
        abort(403)
    return unit


@upload_gate.guard("classroom.manage")
def _judge_roster_change(code) -> int:
    """Before the body (a photo, perhaps) is read: only a teacher of this class may send one, and small."""
    _teacher_unit(code)
    return services.MAX_PHOTO_BYTES + PHOTO_FORM_OVERHEAD


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
    polling = request.endpoint == "classroom.help_state"  # help.js asking is not the learner being active
    if now - seen > current_app.config.get("TABLET_IDLE_SECONDS", 15 * 60):
        sign_out()
        session.pop("tablet_learner", None)
        if polling:  # help.js then shows the roster, with this notice
            flash(_("长时间没有操作，为保护您的账户已自动退出。请点您的名字重新登录。"))
        if request.is_json or request.path.startswith("/api/") or request.method != "GET" or polling:
            return jsonify(error="signed_out", message=_("长时间没有操作，已自动退出，请重新选择名字登录。")), 401
        flash(_("长时间没有操作，为保护您的账户已自动退出。请点您的名字重新登录。"))
        return redirect(url_for("classroom.roster"))
    if not polling:
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
    """The class's roster: PINs, photos, adding a learner, taking one off the roster and back. Only a
    teacher of this class (lms/classroom/services.py: can_manage), only for this class's learners."""
    unit = _teacher_unit(code)
    form, add_form = FlaskForm(), AddLearnerForm()
    status = 200
    if request.method == "POST" and request.form.get("action") == "add":
        if add_form.validate_on_submit():
            try:
                learner = services.add_learner(current_user, unit, add_form.full_name.data, add_form.audience.data,
                                               add_form.pin.data or "")
            except people.PersonError as exc:
                db.session.rollback()
                getattr(add_form, exc.field, add_form.full_name).errors.append(exc.message)
            except people.NotAllowed:
                abort(403)
            else:
                flash(_("已把 %(name)s 加入名单。", name=learner.full_name))
                return redirect(url_for("classroom.manage", code=code))
        status = 400
    elif request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        learner = services.roster_learner(unit, request.form.get("user_id", type=int))
        if learner is None:
            abort(404)
        action = request.form.get("action")
        try:
            if action in ("remove", "restore"):
                people.set_active(current_user, learner, action == "restore")
                flash(_("已把 %(name)s 移出名单（学习记录保留，可以恢复）。", name=learner.full_name) if action == "remove"
                      else _("已把 %(name)s 恢复到名单。", name=learner.full_name))
            elif "photo" in request.files and request.files["photo"].filename:
                services.save_photo(learner, request.files["photo"].stream, actor=current_user)
                flash(_("已更新 %(name)s 的照片。", name=learner.full_name))
            else:
                services.set_pin(learner, request.form.get("pin", ""), actor=current_user)
                flash(_("已为 %(name)s 设置新的 PIN。", name=learner.full_name))
        except people.NotAllowed:
            abort(403)
        except (services.ClassroomError, people.PersonError) as exc:
            db.session.rollback()
            flash(f"{learner.full_name}：{getattr(exc, 'message', exc)}")
        return redirect(url_for("classroom.manage", code=code))
    learners = services.roster(unit)
    return render_template("classroom/manage.html", unit=unit, learners=learners, form=form, add_form=add_form,
                           removed=services.roster(unit, active=False),
                           help_requests=[help_requests.describe(r) for r in help_requests.open_requests(unit)],
                           locked=services.pin_locked_ids(learners)), status


@bp.post("/classroom/<code>/open")
@login_required
def open_tablet(code):
    unit = _teacher_unit(code)
    if not FlaskForm().validate_on_submit():
        abort(400)
    teacher_id = current_user.id
    sign_out()  # the tablet is now the class's: the teacher is signed out
    session["tablet"] = {"unit": unit.id, "by": teacher_id, "id": secrets.token_urlsafe(12)}
    session.permanent = True  # the class day (PERMANENT_SESSION_LIFETIME), not the learners' sign-ins
    return redirect(url_for("classroom.roster"))


@bp.post("/classroom/close")
def close_tablet():
    if not FlaskForm().validate_on_submit():
        abort(400)
    if not services.is_teacher(current_user):
        abort(403)
    session.pop("tablet", None)
    session.pop("tablet_learner", None)
    flash(_("已关闭本平板的班级登录。"))
    return redirect(url_for("classroom.classes"))


# --- the tablet ------------------------------------------------------------------------------------

@bp.get("/tablet")
def roster():
    unit = _tablet_unit()
    if unit is None:
        return render_template("classroom/not_open.html"), 404
    if current_user.is_authenticated and session.get("tablet_learner"):
        return redirect(url_for("courses.catalogue"))
    learners = services.roster(unit)
    return render_template("classroom/roster.html", unit=unit, learners=learners,
                           locked=services.pin_locked_ids(learners, _tablet_id()))


@bp.route("/tablet/<int:user_id>", methods=["GET", "POST"])
def pin(user_id):
    unit = _tablet_unit()
    if unit is None:
        return redirect(url_for("classroom.roster"))
    learner = db.session.get(User, user_id)
    if learner is None or learner.unit_id != unit.id or learner.role != "learner" or not learner.active:
        abort(404)
    form = FlaskForm()
    error, status, locked = None, 200, False
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            services.verify_pin(learner, request.form.get("pin", ""), _tablet_id())
        except services.PinLocked as exc:
            error, status, locked = _pin_locked_message(exc.retry_after), 403, True
        except services.WrongPin as exc:
            error, status = _("PIN 不对，请再试一次（还可以试 %(n)s 次）。", n=exc.tries_left), 400
        except services.NoPin:
            error, status = _("还没有设置 PIN，请老师帮您设置。"), 400
        else:
            if current_user.is_authenticated:
                sign_out()
            login_user(learner)  # a session cookie only: no remember-me on a shared tablet
            session["tablet_learner"] = True
            session["tablet_seen"] = time.time()
            target = continue_target(learner.id)
            if target:
                return redirect(url_for("courses.lesson", slug=target.course.slug,
                                        lesson_slug=target.lesson.slug))
            return redirect(url_for("courses.catalogue"))
    elif services.pin_locked_ids([learner], _tablet_id()):
        error, locked = _pin_locked_message(None), True
    return render_template("classroom/pin.html", unit=unit, learner=learner, form=form, error=error,
                           locked=locked, has_pin=bool(learner.pin_hash), help_learner=learner), status


def _pin_locked_message(seconds: int | None) -> str:
    if seconds:
        return _("输错次数太多，已锁定 %(seconds)s 秒。请稍后再试，或请老师帮您重新设置 PIN。", seconds=seconds)
    return _("输错次数太多，已锁定。请稍后再试，或请老师帮您重新设置 PIN。")


@bp.post("/tablet/switch")
def switch():
    """换人: sign the learner out and show the class roster for the next one."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    sign_out()
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


# --- 请老师帮忙 ----------------------------------------------------------------------------------------
# The tablet raises and cancels its own request (who is taken from the session, never the form); the
# class's teachers see open requests on their class page (help.js polls the JSON) and clear them.

def _asker() -> help_requests.Asker | None:
    """Who is asking, from the session: a class tablet, and its signed-in learner when there is one."""
    tablet = session.get("tablet")
    if not tablet:
        return None
    if session.get("tablet_learner") and current_user.is_authenticated:
        return help_requests.Asker(tablet["unit"], _tablet_id(), current_user._get_current_object(), True)
    return help_requests.Asker(tablet["unit"], _tablet_id())


def _local_path(value: str | None) -> str:
    value = value or ""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else ""


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _help_state(asker) -> dict:
    open_request = help_requests.open_for(asker) if asker else None
    return {"open": open_request is not None,
            "since": open_request.created_at.isoformat() + "Z" if open_request else None}


@bp.app_context_processor
def _help_context():
    """Base pages on a class tablet show 请老师帮忙, or 老师马上来 with 取消 while a request is open."""
    if not session.get("tablet"):
        return {}
    cache = {}

    def help_request():
        if "value" not in cache:
            asker = _asker()
            cache["value"] = help_requests.open_for(asker) if asker else None
        return cache["value"]

    return {"help_request": help_request}


@bp.post("/tablet/help")
def help_raise():
    asker = _asker()
    if asker is None:
        abort(404)
    if not asker.signed_in:
        # on the PIN page the tablet knows whose name was tapped: a learner of this class, or nobody
        learner = db.session.get(User, request.form.get("learner", type=int) or 0)
        if learner is not None and learner.unit_id == asker.unit_id and learner.role == "learner" and learner.active:
            asker = help_requests.Asker(asker.unit_id, asker.tablet, learner, False)
    path = _local_path(request.form.get("next"))
    help_requests.raise_help(asker, path, request.form.get("title", ""))
    if _wants_json():
        return jsonify(_help_state(asker))
    return redirect(path or url_for("classroom.roster"))


@bp.post("/tablet/help/cancel")
def help_cancel():
    asker = _asker()
    if asker is None:
        abort(404)
    help_requests.cancel(asker)
    if _wants_json():
        return jsonify(_help_state(asker))
    return redirect(_local_path(request.form.get("next")) or url_for("classroom.roster"))


@bp.get("/tablet/help")
def help_state():
    """The tablet's own request: open or not (help.js asks every few seconds while one is open)."""
    asker = _asker()
    if asker is None:
        abort(404)
    return jsonify(_help_state(asker))


def _helping_unit(code) -> Unit:
    """A class the signed-in teacher manages; anything else is 404 (another class's requests do not exist)."""
    unit = Unit.query.filter_by(code=code).first()
    if unit is None or not services.can_manage(current_user, unit):
        abort(404)
    return unit


@bp.get("/classroom/<code>/help")
@login_required
def help_list(code):
    unit = _helping_unit(code)
    return jsonify(requests=[help_requests.describe(r) for r in help_requests.open_requests(unit)])


@bp.post("/classroom/<code>/help/<int:request_id>/clear")
@login_required
def help_clear(code, request_id):
    unit = _helping_unit(code)
    if not help_requests.clear(unit, request_id, current_user):
        abort(404)
    if _wants_json():
        return jsonify(requests=[help_requests.describe(r) for r in help_requests.open_requests(unit)])
    return redirect(url_for("classroom.manage", code=code) + "#help-requests")
