"""Tablet sign-in rules as plain functions: which classes a teacher may open, PINs and their lock."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from lms.accounts.models import Unit, User
from lms.extensions import db

MAX_PIN_FAILURES = 5
PIN_RE = re.compile(r"^[0-9]{4}$")
TEACHER_ROLES = ("instructor", "unit_admin", "admin")
PHOTO_TYPES = (b"\xff\xd8\xff", b"\x89PNG")
MAX_PHOTO_BYTES = 2 * 1024 * 1024
PHOTO_SIZE = 160  # CSS px shown at ≤ 120, so sharp on 1.5× tablets


class ClassroomError(ValueError):
    pass


class PinLocked(ClassroomError):
    pass


def is_teacher(user) -> bool:
    return bool(user and getattr(user, "is_authenticated", False) and user.role in TEACHER_ROLES)


def classes_for(teacher: User) -> list[Unit]:
    """Class units a teacher may open a tablet for: every class in their unit's subtree (admins: all)."""
    query = Unit.query.filter_by(kind="class")
    if teacher.role != "admin":
        query = query.filter(Unit.path.startswith(teacher.unit.path))
    return query.order_by(Unit.path).all()


def can_manage(teacher: User, unit: Unit) -> bool:
    return is_teacher(teacher) and unit.kind == "class" and (
        teacher.role == "admin" or unit.path.startswith(teacher.unit.path))


def roster(unit: Unit) -> list[User]:
    return (User.query.filter_by(unit_id=unit.id, role="learner", active=True)
            .order_by(User.full_name, User.id).all())


def set_pin(learner: User, pin: str) -> None:
    """Set or reset a learner's PIN; a reset also lifts the lock after five wrong PINs."""
    pin = (pin or "").strip()
    if not PIN_RE.match(pin):
        raise ClassroomError("PIN 必须是 4 位数字")
    learner.pin_hash = generate_password_hash(pin)
    learner.pin_failures = 0
    learner.pin_locked = False
    db.session.commit()


def verify_pin(learner: User, pin: str) -> bool:
    """True when the PIN is right. Five wrong PINs in a row lock the learner until a teacher resets it."""
    if learner.pin_locked:
        raise PinLocked("输错次数太多，已锁定。请老师帮您重新设置 PIN。")
    if not learner.pin_hash:
        raise ClassroomError("还没有设置 PIN，请老师帮您设置。")
    if PIN_RE.match((pin or "").strip()) and check_password_hash(learner.pin_hash, pin.strip()):
        learner.pin_failures = 0
        db.session.commit()
        return True
    # one UPDATE, so two tablets typing at once cannot lose a failure
    User.query.filter_by(id=learner.id).update(
        {User.pin_failures: User.pin_failures + 1}, synchronize_session=False)
    db.session.commit()
    db.session.refresh(learner)
    if learner.pin_failures >= MAX_PIN_FAILURES:
        learner.pin_locked = True
        db.session.commit()
        raise PinLocked("输错 5 次，已锁定。请老师帮您重新设置 PIN。")
    return False


def pins_left(learner: User) -> int:
    return max(0, MAX_PIN_FAILURES - learner.pin_failures)


def save_photo(learner: User, data: bytes) -> None:
    """A roster photo (JPEG or PNG, ≤ 2 MB), cropped to a small square JPEG under DATA_DIR/photos/
    so a roster of a whole class stays light."""
    if not data:
        raise ClassroomError("请选择照片文件")
    if len(data) > MAX_PHOTO_BYTES:
        raise ClassroomError("照片太大，请小于 2 MB")
    if not any(data.startswith(magic) for magic in PHOTO_TYPES):
        raise ClassroomError("照片必须是 JPG 或 PNG 图片")
    relative = f"photos/{learner.id}.jpg"
    path = Path(current_app.config["DATA_DIR"]) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "upload", Path(tmp) / "photo.jpg"
        source.write_bytes(data)
        result = subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-frames:v", "1",
             "-vf", f"scale={PHOTO_SIZE}:{PHOTO_SIZE}:force_original_aspect_ratio=increase,"
                    f"crop={PHOTO_SIZE}:{PHOTO_SIZE}", "-q:v", "6", str(out)],
            capture_output=True, timeout=60)
        if result.returncode or not out.is_file():
            raise ClassroomError("照片无法读取，请换一张 JPG 或 PNG 图片")
        os.replace(out, path)
    learner.photo_path = relative
    db.session.commit()
