"""请老师帮忙 as plain functions: raise, cancel, list and clear help requests of a class.

Who may do what is decided by the caller's session (lms/classroom/routes.py): a tablet raises and
cancels only its own request (the key comes from the session, never from the form); a teacher lists
and clears only requests of a class they manage."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from lms.accounts.models import Unit, User, utcnow
from lms.classroom.models import HelpRequest
from lms.extensions import db

MAX_AGE = timedelta(hours=2)  # a request nobody cleared drops off: the lesson is long over
MAX_TITLE, MAX_PATH = 120, 255


@dataclass(frozen=True)
class Asker:
    """Who presses the button: the class and tablet from the session; the learner when known."""
    unit_id: int
    tablet: str
    user: User | None = None
    signed_in: bool = False

    @property
    def key(self) -> str:
        # one open request per signed-in learner; before sign-in, one per tablet
        return f"user:{self.user.id}" if self.signed_in and self.user else f"tablet:{self.tablet}"


def _fresh(request: HelpRequest | None, now: datetime) -> HelpRequest | None:
    return request if request is not None and request.created_at > now - MAX_AGE else None


def _close(request: HelpRequest, how: str, by: User | None, now: datetime) -> None:
    request.open_key, request.closed_at, request.closed_how = None, now, how
    request.closed_by_id = by.id if by is not None else None


def open_for(asker: Asker, now: datetime | None = None) -> HelpRequest | None:
    """The asker's open request (None when there is none, or it is older than MAX_AGE)."""
    return _fresh(HelpRequest.query.filter_by(open_key=asker.key, unit_id=asker.unit_id).first(), now or utcnow())


def raise_help(asker: Asker, page_path: str = "", page_title: str = "", now: datetime | None = None) -> HelpRequest:
    """Ask for the teacher. Pressing again while a request is open changes nothing (it keeps its time,
    so the teacher's list keeps its order); an expired one is closed and a new one made."""
    now = now or utcnow()
    existing = HelpRequest.query.filter_by(open_key=asker.key).first()
    if existing is not None and existing.unit_id == asker.unit_id and _fresh(existing, now):
        return existing
    if existing is not None:  # stale, or left open in another class: closed, kept
        _close(existing, "expired", None, now)
        db.session.flush()
    request = HelpRequest(unit_id=asker.unit_id, tablet=asker.tablet[:40], user_id=asker.user.id if asker.user else None,
                          signed_in=asker.signed_in, page_path=(page_path or "")[:MAX_PATH],
                          page_title=" ".join((page_title or "").split())[:MAX_TITLE], created_at=now,
                          open_key=asker.key)
    db.session.add(request)
    try:
        db.session.commit()
    except IntegrityError:  # the same learner pressed on two tablets at once: the other press won
        db.session.rollback()
        return HelpRequest.query.filter_by(open_key=asker.key).one()
    return request


def cancel(asker: Asker, now: datetime | None = None) -> bool:
    """The learner changed their mind (取消): closes only the asker's own request."""
    request = HelpRequest.query.filter_by(open_key=asker.key, unit_id=asker.unit_id).first()
    if request is None:
        return False
    _close(request, "cancelled", asker.user if asker.signed_in else None, now or utcnow())
    db.session.commit()
    return True


def open_requests(unit: Unit, now: datetime | None = None) -> list[HelpRequest]:
    """The class's open requests of the last MAX_AGE, oldest first (who has waited longest)."""
    now = now or utcnow()
    return (HelpRequest.query.filter(HelpRequest.unit_id == unit.id, HelpRequest.open_key.isnot(None),
                                     HelpRequest.created_at > now - MAX_AGE)
            .order_by(HelpRequest.created_at, HelpRequest.id).all())


def clear(unit: Unit, request_id: int, teacher: User, now: datetime | None = None) -> bool:
    """已处理: the teacher closes a request of this class. False when it is not this class's (the
    caller answers 404); clearing one already closed is fine (two teachers pressed at once)."""
    request = db.session.get(HelpRequest, request_id)
    if request is None or request.unit_id != unit.id:
        return False
    if request.open_key is not None:
        _close(request, "cleared", teacher, now or utcnow())
        db.session.commit()
    return True


def ago(request: HelpRequest, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or utcnow()) - request.created_at).total_seconds()))
    if seconds < 60:
        return _("刚刚")
    return _("%(n)s 分钟前", n=seconds // 60)


def describe(request: HelpRequest, now: datetime | None = None) -> dict:
    """What the teacher's page shows of a request (also its JSON)."""
    if request.user is not None:
        name = request.user.full_name if request.signed_in else _("%(name)s（还没登录）", name=request.user.full_name)
    else:
        name = _("还没选名字的学员")
    return {"id": request.id, "name": name, "place": request.page_title or request.page_path or _("班级平板"),
            "tablet": _("平板 %(code)s", code=request.tablet[:4]), "ago": ago(request, now),
            "since": request.created_at.isoformat() + "Z"}
