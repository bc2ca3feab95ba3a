"""Tablet sign-in rules as plain functions: which classes a teacher may open, PINs and their throttle."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from lms.accounts import passwords, people, throttle
from lms.accounts.models import Unit, User
from lms.accounts.scope import can_oversee, in_subtree, oversight_root
from lms.extensions import db
from lms.records.audit import audit

# a PIN attempt counts against the learner on this tablet (growing waits after a few), against the
# learner on any tablet, and against the tablet across its roster (spraying one PIN over a class)
PIN_SCOPES = ("pin", "pin-learner", "pin-tablet")
LEARNER_PIN_SCOPES = ("pin", "pin-learner")
PIN_RE = re.compile(r"^[0-9]{4}$")
TEACHER_ROLES = ("instructor", "unit_admin", "admin")
PHOTO_TYPES = (b"\xff\xd8\xff", b"\x89PNG")
MAX_PHOTO_BYTES = 2 * 1024 * 1024
PHOTO_SIZE = 160  # CSS px shown at ≤ 120, so sharp on 1.5× tablets


class ClassroomError(ValueError):
    pass


class PinLocked(ClassroomError):
    """Too many wrong PINs: the next try waits `retry_after` seconds, or a teacher sets a new PIN."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class WrongPin(ClassroomError):
    def __init__(self, tries_left: int):
        super().__init__(f"wrong PIN, {tries_left} tries left")
        self.tries_left = tries_left


class NoPin(ClassroomError):
    pass


def is_teacher(user) -> bool:
    return bool(user and getattr(user, "is_authenticated", False) and user.role in TEACHER_ROLES)


def classes_for(teacher: User) -> list[Unit]:
    """Class units a teacher may open a tablet for: every class in their unit's subtree (admins: all)."""
    query = Unit.query.filter_by(kind="class")
    root = oversight_root(teacher)
    if root is not None:
        query = query.filter(in_subtree(root))
    return query.order_by(Unit.path).all()


def can_manage(teacher: User, unit: Unit) -> bool:
    return is_teacher(teacher) and unit.kind == "class" and can_oversee(teacher, unit)


def roster(unit: Unit, active: bool = True) -> list[User]:
    """The class's learners (active=False: those taken off the roster, who can be put back)."""
    return (User.query.filter_by(unit_id=unit.id, role="learner", active=active)
            .order_by(User.full_name, User.id).all())


def roster_learner(unit: Unit, user_id: int | None) -> User | None:
    """A learner of this class (on the roster or taken off it), else None: a teacher's changes reach no one else."""
    learner = db.session.get(User, user_id or 0)
    return learner if learner is not None and learner.unit_id == unit.id and learner.role == "learner" else None


def add_learner(teacher: User, unit: Unit, full_name: str, audience: str, pin: str = "") -> User:
    """A new learner on the class's roster (account name made up: they sign in on the tablet with their
    name and PIN), through the one way people are created (lms/accounts/people.py), so the teacher's
    right to add to this class is checked there too."""
    pin = (pin or "").strip()
    if pin and not PIN_RE.match(pin):
        raise people.PersonError("pin", _("PIN 必须是 4 位数字"))
    number = User.query.filter_by(unit_id=unit.id).count() + 1
    while User.query.filter_by(username=f"class{unit.id}-{number}").first():
        number += 1
    learner, _password = people.create_person(teacher, people.PersonData(
        full_name=full_name, audience=audience, role="learner", unit_code=unit.code, username=f"class{unit.id}-{number}"))
    if pin:
        set_pin(learner, pin, actor=teacher)
    return learner


def set_pin(learner: User, pin: str, actor: User | None = None) -> None:
    """Set or reset a learner's PIN; a reset also lifts the waits after wrong PINs, on every tablet."""
    pin = (pin or "").strip()
    if not PIN_RE.match(pin):
        raise ClassroomError(_("PIN 必须是 4 位数字"))
    learner.pin_hash = passwords.hash_password(pin)
    audit(actor, "user.pin_set", learner)
    db.session.commit()
    throttle.clear(LEARNER_PIN_SCOPES, subject=str(learner.id))


def verify_pin(learner: User, pin: str, tablet: str) -> None:
    """Returns when the PIN is right; raises WrongPin, PinLocked or NoPin. The try is counted before the
    PIN is checked (lms/accounts/throttle.py), so tablets typing at once get no more checks than the limit."""
    if not learner.pin_hash:
        raise NoPin("no PIN set")
    try:
        attempt = throttle.reserve([throttle.Key("pin", str(learner.id), tablet),
                                    throttle.Key("pin-learner", str(learner.id)),
                                    throttle.Key("pin-tablet", tablet)])
    except throttle.Throttled as exc:
        raise PinLocked(exc.retry_after) from None
    pin = (pin or "").strip()
    if PIN_RE.match(pin) and passwords.verify_password(learner.pin_hash, pin):
        if passwords.needs_rehash(learner.pin_hash):  # an older hash: replaced, in settle's commit
            learner.pin_hash = passwords.hash_password(pin)
        # the learner's counts forgotten; the tablet gets back this try's (a whole class signs in on one
        # tablet); one commit
        throttle.settle(attempt, LEARNER_PIN_SCOPES, ("pin-tablet",))
        return
    if attempt.wait_if_wrong:
        raise PinLocked(attempt.wait_if_wrong)
    raise WrongPin(attempt.tries_left)


def pin_locked_ids(learners: list[User], tablet: str | None = None) -> set[int]:
    """Learners who must wait before their next PIN (on this tablet, when given): shown on the roster
    and to the teacher, who can lift it by setting a new PIN."""
    blocked = throttle.blocked_subjects(LEARNER_PIN_SCOPES, [str(learner.id) for learner in learners], tablet)
    return {int(subject) for subject in blocked}


def save_photo(learner: User, stream, actor: User | None = None) -> None:
    """A roster photo (JPEG or PNG, ≤ 2 MB), cropped to a small square JPEG under DATA_DIR/photos/
    so a roster of a whole class stays light. Reads at most one byte past the limit from `stream`."""
    data = stream.read(MAX_PHOTO_BYTES + 1)
    if not data:
        raise ClassroomError(_("请选择照片文件"))
    if len(data) > MAX_PHOTO_BYTES:
        raise ClassroomError(_("照片太大，请小于 2 MB"))
    if not any(data.startswith(magic) for magic in PHOTO_TYPES):
        raise ClassroomError(_("照片必须是 JPG 或 PNG 图片"))
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
            raise ClassroomError(_("照片无法读取，请换一张 JPG 或 PNG 图片"))
        os.replace(out, path)
    learner.photo_path = relative
    audit(actor, "user.photo", learner)
    db.session.commit()
