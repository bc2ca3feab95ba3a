"""Who may touch units: every /admin/units route refuses learners and instructors (403), hides units of
another subtree from a unit admin (404, nothing changed), and an import confirmation belongs to the
session that checked the file."""
from __future__ import annotations

import io
import re

import pytest

from lms.accounts.models import Unit
from lms.accounts.services import get_or_create_unit
from lms.extensions import db
from lms.records.models import AuditLog
from tests.conftest import BrowserLikeClient

CSV = "\ufeff单位编码,单位名称,上级编码,类型\r\nnew-v,新村,{parent},村\r\n".encode()


@pytest.fixture
def world(app, units, make_user):
    vb1 = get_or_create_unit("vb1", "澄溪一村", "village", units["town_b"])
    db.session.commit()
    return {**units, "vb1": vb1,
            "learner": make_user("learner", unit="town-a"),
            "teacher": make_user("teacher", role="instructor", unit="town-a", audience="cadre"),
            "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
            "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre")}


def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/")
    return client


def unit_routes(app):
    return sorted({(rule.rule, method) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("units.")
                   for method in rule.methods - {"HEAD", "OPTIONS"}})


def request(client, rule, method, unit_id):
    url = rule.replace("<int:unit_id>", str(unit_id))
    if method == "GET":
        return client.get(url)
    data = {"csrf_token": client.token, "name": "改名", "kind": "village", "parent": "town-a", "code": "zz",
            "token": "units-x.csv", "file": (io.BytesIO(CSV), "t.csv")}
    return client.post(url, data=data, content_type="multipart/form-data")


def test_every_units_route_is_enumerated(app):
    assert len(unit_routes(app)) >= 12  # tree, search, new ×2, unit, edit, move, (de)activate, import ×2, confirm, template


@pytest.mark.parametrize("who", ["learner", "teacher"])
def test_learners_and_instructors_get_403_everywhere(app, world, who):
    client = signed_in(app, world[who])
    before = (Unit.query.count(), AuditLog.query.count())
    for rule, method in unit_routes(app):
        response = request(client, rule, method, world["town_a"].id)
        assert response.status_code == 403, (rule, method, response.status_code)
    assert (Unit.query.count(), AuditLog.query.count()) == before


def test_anonymous_is_sent_to_sign_in(app, world):
    client = app.test_client()
    for rule, method in unit_routes(app):
        if method == "GET":
            response = request(client, rule, method, world["town_a"].id)
            assert response.status_code == 302 and "/login" in response.headers["Location"], rule


def test_a_unit_of_another_subtree_is_not_found_and_unchanged(app, world):
    client = signed_in(app, world["ua_a"])
    before = [(u.code, u.name, u.path, u.active) for u in Unit.query.order_by(Unit.id)]
    for target in ("county", "town_b", "vb1"):
        for rule, method in unit_routes(app):
            if "<int:unit_id>" in rule:
                response = request(client, rule, method, world[target].id)
                assert response.status_code == 404, (target, rule, method, response.status_code)
        assert client.get(f"/admin/units?root={world[target].id}").status_code == 404
        assert client.get(f"/admin/units/new?parent={world[target].id}").get_data(as_text=True).count('value="town-a"') == 1
    db.session.expire_all()
    assert [(u.code, u.name, u.path, u.active) for u in Unit.query.order_by(Unit.id)] == before
    assert AuditLog.query.count() == 0
    assert [u["code"] for u in client.get("/admin/units/search?q=").get_json()] == ["town-a"]


def test_upload_of_a_learner_is_refused_before_its_body_is_read(app, world):
    client = signed_in(app, world["learner"])
    big = io.BytesIO(b"x" * (20 * 1024 * 1024))
    response = client.post("/admin/units/import", data={"csrf_token": client.token, "file": (big, "t.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 403


def test_an_import_confirmation_belongs_to_the_session_that_checked_it(app, world):
    admin_a, admin_b = signed_in(app, world["ua_a"]), signed_in(app, world["ua_b"])
    page = admin_a.post("/admin/units/import", data={"csrf_token": admin_a.token,
                                                     "file": (io.BytesIO(CSV.replace(b"{parent}", b"town-a")), "t.csv")},
                        content_type="multipart/form-data").get_data(as_text=True)
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', page).group(1)
    stolen = admin_b.post("/admin/units/import/confirm", data={"csrf_token": admin_b.token, "token": token})
    assert stolen.status_code == 302 and stolen.headers["Location"] == "/admin/units/import"
    assert not Unit.query.filter_by(code="new-v").count()
    for forged in ("../../lms.sqlite3", "units-../x.csv", ""):
        assert admin_a.post("/admin/units/import/confirm",
                            data={"csrf_token": admin_a.token, "token": forged}).status_code == 302
    assert not Unit.query.filter_by(code="new-v").count()
