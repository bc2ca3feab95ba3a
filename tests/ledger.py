"""Ledger records made directly (as any crediting path writes them) and a signed-in client, for the
certificate, correction and closing tests."""
from __future__ import annotations

from decimal import Decimal

from lms.accounts.models import utcnow
from lms.extensions import db
from lms.records.models import TrainingRecord
from lms.records.services import certificate_number
from tests.conftest import BrowserLikeClient


def add_record(user, hours="0.5", when=None, title="防范电信诈骗", kind="course", certificate=True):
    when = when or utcnow()
    record = TrainingRecord(user_id=user.id, title=title, kind=kind, hours=Decimal(hours), earned_at=when,
                            source="online" if kind == "course" else "offline",
                            certificate_no=certificate_number(user.id, 7, when) if certificate else None)
    db.session.add(record)
    db.session.commit()
    return record


def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    return client


def post_form(client: BrowserLikeClient, path: str, data: dict):
    """POST a form as the browser does, with the CSRF token of a page."""
    client.refresh_token("/my/hours")
    return client.post(path, data={"csrf_token": client.token, **data})
