"""Units in the console: the tree with people counts, adding, renaming, moving and deactivating units,
importing a tree (browser and `lms units import`), the template, and the unit picker's search."""
from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from html import unescape

import pytest

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import in_subtree
from lms.accounts.services import get_or_create_unit
from lms.extensions import db
from lms.records.models import AuditLog, TrainingRecord
from tests.conftest import BrowserLikeClient
from tests.test_concurrency import race_app  # noqa: F401  (SQLite, then PostgreSQL)


@pytest.fixture
def tree(app, units, make_user):
    """county → town-a (village va1 → class va1-c1), town-b (village vb1); people in several of them."""
    va1 = get_or_create_unit("va1", "桂溪一村", "village", units["town_a"])
    va1_c1 = get_or_create_unit("va1-c1", "一村老年班", "class", va1)
    vb1 = get_or_create_unit("vb1", "澄溪一村", "village", units["town_b"])
    db.session.commit()
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre"),
        "learner": make_user("learner-va1", unit="va1", full_name="张桂兰"),
        "learner2": make_user("learner-c1", unit="va1-c1"),
        "learner_b": make_user("learner-vb1", unit="vb1"),
    }
    return {**units, "va1": va1, "va1_c1": va1_c1, "vb1": vb1, **people}


def client_for(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/admin/units")
    return client


def post(client, url, data=None, **kwargs):
    return client.post(url, data={"csrf_token": client.token, **(data or {})}, **kwargs)


def errors(page: str) -> list[str]:
    return [unescape(e) for e in re.findall(r'class="field-error"[^>]*>⚠ ([^<]*)<', page)]


def field_error(page: str, field_id: str) -> str:
    match = re.search(rf'id="{field_id}-error">⚠ ([^<]*)<', page)
    assert match, f"no error on {field_id}: {errors(page)}"
    return unescape(match.group(1))


def tree_part(page: str) -> str:
    return page.split('id="unit-tree"')[1].split('<footer')[0]


def unit(code) -> Unit:
    db.session.expire_all()
    return Unit.query.filter_by(code=code).one()


def audit_actions(prefix="unit.") -> list[tuple[str, str]]:
    return [(row.action, row.target) for row in AuditLog.query.order_by(AuditLog.id)
            if row.action.startswith(prefix)]


# ---- the tree ---------------------------------------------------------------------------------

def test_tree_shows_every_unit_nested_with_people_counts(app, tree):
    page = client_for(app, tree["admin"]).get("/admin/units").get_data(as_text=True)
    assert "全部单位：6 个，共 6 人" in page
    # nested: the class sits inside the village's list, inside town-a's, inside the county's
    county = page.index("垫江县")
    assert county < page.index("桂溪街道") < page.index("桂溪一村") < page.index("一村老年班")
    village = re.search(r'桂溪一村</a> <small>va1 · 村 · 1 人，含下级共 2 人</small><details><summary>1 个下级单位'
                        r'</summary><ul>\s*<li><a href="/admin/units/\d+">一村老年班</a> <small>va1-c1 · 班级 · 1 人</small>',
                        page)
    assert village, page
    # collapsible without JavaScript: the first level open, deeper levels closed
    assert re.search(r"垫江县</a> <small>[^<]*</small><details open>", page)
    assert "<script" not in tree_part(page)
    expanded = client_for(app, tree["admin"]).get("/admin/units?expand=1").get_data(as_text=True)
    assert "<details>" not in expanded and expanded.count("<details open>") == 4


def test_counts_follow_people_moving_and_keep_deactivated_ones(app, tree):
    """A deactivated person still belongs to their unit (their records are reported there)."""
    tree["learner2"].active = False
    tree["learner_b"].unit = tree["va1"]
    db.session.commit()
    page = client_for(app, tree["admin"]).get("/admin/units").get_data(as_text=True)
    assert "va1 · 村 · 2 人，含下级共 3 人" in page and "vb1 · 村 · 0 人" in page and "全部单位：6 个，共 6 人" in page


def test_unit_admin_sees_their_subtree_only(app, tree):
    page = client_for(app, tree["ua_a"]).get("/admin/units").get_data(as_text=True)
    assert "桂溪街道 及其下级：3 个单位，共 3 人" in page  # ua-a, two learners
    assert "一村老年班" in page
    for elsewhere in ("垫江县", "澄溪镇", "澄溪一村"):
        assert elsewhere not in tree_part(page)


def test_tree_of_one_subtree(app, tree):
    client = client_for(app, tree["admin"])
    page = client.get(f"/admin/units?root={tree['va1'].id}").get_data(as_text=True)
    assert "桂溪一村 及其下级：2 个单位，共 2 人" in page and "澄溪一村" not in page
    assert client_for(app, tree["ua_b"]).get(f"/admin/units?root={tree['va1'].id}").status_code == 404


# ---- add --------------------------------------------------------------------------------------

def test_admin_adds_a_unit_under_a_parent_typed_as_a_code(app, tree):
    client = client_for(app, tree["admin"])
    response = post(client, "/admin/units/new", {"parent": "town-a", "name": " 桂溪二村 ", "code": "va2", "kind": "village"})
    assert response.status_code == 302
    made = unit("va2")
    assert (made.name, made.kind, made.path, made.parent.code, made.active) == ("桂溪二村", "village", "/county/town-a/va2/", "town-a", True)
    assert audit_actions() == [("unit.create", f"unit:{made.id}")]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已添加单位“桂溪二村”" in page and "<code>va2</code>" in page


def test_admin_adds_a_top_level_unit(app, tree):
    client = client_for(app, tree["admin"])
    assert post(client, "/admin/units/new", {"parent": "", "name": "梁平区", "code": "liangping", "kind": "county"}).status_code == 302
    assert unit("liangping").path == "/liangping/" and unit("liangping").parent_id is None


@pytest.mark.parametrize("data, field, message", [
    ({"code": "town-b"}, "code", "单位编码“town-b”已被使用"),
    ({"code": "a/b"}, "code", "不能含 /"),
    ({"code": "has space"}, "code", "不能含 /、空格"),
    ({"parent": "nowhere"}, "parent", "单位编码“nowhere”不存在"),
    ({"name": "   "}, "name", "请填写单位名称"),
    ({"kind": "galaxy"}, "kind", "不是有效的选择"),
])
def test_bad_input_names_the_field_and_saves_nothing(app, tree, data, field, message):
    client = client_for(app, tree["admin"])
    before = Unit.query.count()
    response = post(client, "/admin/units/new", {"parent": "town-a", "name": "新单位", "code": "new-unit", "kind": "village", **data})
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    assert Unit.query.count() == before and audit_actions() == []


def test_unit_admin_adds_only_inside_their_subtree(app, tree):
    client = client_for(app, tree["ua_a"])
    form = client.get("/admin/units/new").get_data(as_text=True)
    assert 'value="town-a"' in form  # their own unit is the suggested parent
    outside = post(client, "/admin/units/new", {"parent": "town-b", "name": "x", "code": "x1", "kind": "village"})
    assert outside.status_code == 400
    assert "单位编码“town-b”不存在，或不在您的管辖范围内" in field_error(outside.get_data(as_text=True), "parent")
    top = post(client, "/admin/units/new", {"parent": "", "name": "x", "code": "x2", "kind": "county"})
    assert "只能在自己管辖的单位之下" in field_error(top.get_data(as_text=True), "parent")
    assert post(client, "/admin/units/new", {"parent": "va1", "name": "二班", "code": "va1-c2", "kind": "class"}).status_code == 302
    assert unit("va1-c2").path == "/county/town-a/va1/va1-c2/"
    assert not Unit.query.filter(Unit.code.in_(["x1", "x2"])).count()


# ---- rename -----------------------------------------------------------------------------------

def test_rename_and_change_kind(app, tree):
    client = client_for(app, tree["ua_a"])
    response = post(client, f"/admin/units/{tree['va1'].id}/edit", {"name": "桂溪一社区", "kind": "community"})
    assert response.status_code == 302
    assert (unit("va1").name, unit("va1").kind) == ("桂溪一社区", "community")
    log = AuditLog.query.filter_by(action="unit.update").one()
    assert log.target == f"unit:{tree['va1'].id}" and "桂溪一村 → 桂溪一社区" in log.detail and "村 → 社区" in log.detail
    # a unit admin may rename their own unit, but the page offers no move or deactivation of it
    own = client.get(f"/admin/units/{tree['town_a'].id}").get_data(as_text=True)
    assert 'id="unit-edit"' in own and 'id="unit-move"' not in own and 'id="unit-active"' not in own
    empty = post(client, f"/admin/units/{tree['va1'].id}/edit", {"name": "", "kind": "community"})
    assert empty.status_code == 400 and "请填写单位名称" in field_error(empty.get_data(as_text=True), "name")


# ---- move -------------------------------------------------------------------------------------

def test_move_rewrites_the_subtree_and_people_and_records_follow(app, tree):
    learner = tree["learner2"]
    db.session.add(TrainingRecord(user_id=learner.id, title="活动", kind="offline", hours=Decimal("1"),
                                  earned_at=utcnow(), source="offline"))
    db.session.commit()
    client = client_for(app, tree["admin"])
    response = post(client, f"/admin/units/{tree['va1'].id}/move", {"parent": "town-b"})
    assert response.status_code == 302
    assert unit("va1").path == "/county/town-b/va1/" and unit("va1-c1").path == "/county/town-b/va1/va1-c1/"
    assert unit("va1").parent.code == "town-b"
    moved_in = {u.username for u in User.query.join(Unit).filter(in_subtree(unit("town-b")))}
    assert {"learner-va1", "learner-c1"} <= moved_in
    # the learner's records are now reported under town-b
    assert TrainingRecord.query.join(User, TrainingRecord.user_id == User.id).join(Unit).filter(in_subtree(unit("town-b"))).count() == 1
    assert "共 2 个单位" in client.get(response.headers["Location"]).get_data(as_text=True)
    log = AuditLog.query.filter_by(action="unit.move").one()
    assert "town-a → town-b" in log.detail
    # the unit admin of town-b now manages them; the one of town-a no longer does
    assert client_for(app, tree["ua_b"]).get(f"/admin/units/{tree['va1_c1'].id}").status_code == 200
    assert client_for(app, tree["ua_a"]).get(f"/admin/units/{tree['va1_c1'].id}").status_code == 404


def test_moving_a_unit_under_its_own_descendant_is_refused_and_nothing_changes(app, tree):
    client = client_for(app, tree["admin"])
    for target in ("va1-c1", "va1"):
        response = post(client, f"/admin/units/{tree['va1'].id}/move", {"parent": target})
        assert response.status_code == 400
        assert "不能把单位移到它自己或它的下级单位之下" in field_error(response.get_data(as_text=True), "parent")
    assert unit("va1").path == "/county/town-a/va1/" and unit("va1-c1").path == "/county/town-a/va1/va1-c1/"
    assert audit_actions() == []


def test_move_to_an_unknown_parent_names_the_field(app, tree):
    response = post(client_for(app, tree["admin"]), f"/admin/units/{tree['va1'].id}/move", {"parent": "nowhere"})
    assert response.status_code == 400
    assert "单位编码“nowhere”不存在" in field_error(response.get_data(as_text=True), "parent")


def test_unit_admin_cannot_move_out_of_their_subtree_nor_their_own_unit(app, tree):
    client = client_for(app, tree["ua_a"])
    out = post(client, f"/admin/units/{tree['va1_c1'].id}/move", {"parent": "town-b"})
    assert out.status_code == 400 and "不在您的管辖范围内" in field_error(out.get_data(as_text=True), "parent")
    own = post(client, f"/admin/units/{tree['town_a'].id}/move", {"parent": "va1"})
    assert own.status_code == 400 and "不能移动您自己的单位" in own.get_data(as_text=True)
    # inside their subtree: fine
    get_or_create_unit("va2", "桂溪二村", "village", tree["town_a"])
    db.session.commit()
    assert post(client, f"/admin/units/{tree['va1_c1'].id}/move", {"parent": "va2"}).status_code == 302
    assert unit("va1-c1").path == "/county/town-a/va2/va1-c1/"


def test_codes_with_wildcards_move_and_scope_exactly(app, units, make_user):
    """`_` and `%` in codes are plain characters: a move rewrites exactly the subtree, and the admin of
    `t_1` never sees `tx1` or `t%1`."""
    for code in ("t_1", "tx1", "t%1"):
        parent = get_or_create_unit(code, f"单位{code}", "township", units["county"])
        get_or_create_unit(f"{code}-v", f"村{code}", "village", parent)
    db.session.commit()
    admin = make_user("admin-t1", role="unit_admin", unit="t_1", audience="cadre")
    boss = make_user("boss", role="admin", unit="county", audience="cadre")
    page = client_for(app, admin).get("/admin/units").get_data(as_text=True)
    assert "村t_1" in page and "村tx1" not in tree_part(page) and "村t%1" not in tree_part(page)
    assert client_for(app, admin).get(f"/admin/units/{unit('tx1-v').id}").status_code == 404
    found = client_for(app, admin).get("/admin/units/search?q=村").get_json()
    assert [u["code"] for u in found] == ["t_1-v"]
    assert post(client_for(app, boss), f"/admin/units/{unit('t_1').id}/move", {"parent": "t%1"}).status_code == 302
    assert unit("t_1-v").path == "/county/t%1/t_1/t_1-v/"
    assert unit("tx1-v").path == "/county/tx1/tx1-v/" and unit("t%1-v").path == "/county/t%1/t%1-v/"


# ---- deactivate -------------------------------------------------------------------------------

def test_deactivate_keeps_everything_but_takes_nobody_new(app, tree):
    client = client_for(app, tree["admin"])
    response = post(client, f"/admin/units/{tree['va1'].id}/deactivate")
    assert response.status_code == 302
    assert not unit("va1").active and not unit("va1-c1").active and unit("town-a").active
    assert db.session.get(User, tree["learner"].id).unit.code == "va1"  # people stay where they were
    assert "已停用“桂溪一村”及其下级单位（2 个）" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已停用" in client.get("/admin/units").get_data(as_text=True)
    # nothing new goes in: no unit below it, no move under it, not offered by the picker
    made = post(client, "/admin/units/new", {"parent": "va1", "name": "x", "code": "x1", "kind": "class"})
    assert "已停用" in field_error(made.get_data(as_text=True), "parent")
    moved = post(client, f"/admin/units/{tree['vb1'].id}/move", {"parent": "va1-c1"})
    assert "已停用" in field_error(moved.get_data(as_text=True), "parent")
    assert [u["code"] for u in client.get("/admin/units/search?q=一村").get_json()] == ["vb1"]
    created = app.test_cli_runner().invoke(args=["users", "create", "newbie", "--role", "learner", "--audience", "elder",
                                                 "--unit", "va1-c1", "--password", "long-enough-1"])
    assert created.exit_code != 0 and "单位已停用：va1-c1" in created.output
    assert {u["code"] for u in client.get("/admin/units/search?q=一村&inactive=1").get_json()} == {"va1", "vb1", "va1-c1"}
    # a child cannot come back while its parent is off; the parent brings its subtree back
    refused = post(client, f"/admin/units/{tree['va1_c1'].id}/reactivate")
    assert refused.status_code == 400 and "请先启用上级单位" in refused.get_data(as_text=True)
    assert post(client, f"/admin/units/{tree['va1'].id}/reactivate").status_code == 302
    assert unit("va1").active and unit("va1-c1").active
    assert [a for a, _t in audit_actions()] == ["unit.deactivate", "unit.reactivate"]


def test_unit_admin_cannot_deactivate_their_own_unit(app, tree):
    response = post(client_for(app, tree["ua_a"]), f"/admin/units/{tree['town_a'].id}/deactivate")
    assert response.status_code == 400 and "不能停用您自己的单位" in response.get_data(as_text=True)
    assert unit("town-a").active


# ---- import -----------------------------------------------------------------------------------

GOOD_ROWS = [("单位编码", "单位名称", "上级编码", "类型"),
             ("zb-c1", "二年级一班", "zb", "班级"),  # a child before its parent is fine
             ("town-c", "高安镇", "county", "乡镇"),
             ("zb", "高安小学", "town-c", "学校"),
             ("gc_1%", "高安社区", "town-c", "社区")]


def csv_bytes(rows, encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, data", [
    ("units.csv", csv_bytes(GOOD_ROWS)),
    ("units-nobom.csv", csv_bytes(GOOD_ROWS, "utf-8")),
    ("units-gbk.csv", csv_bytes(GOOD_ROWS, "gbk")),
    ("units.xlsx", xlsx_bytes(GOOD_ROWS)),
])
def test_cli_imports_a_tree_in_every_format(app, tree, tmp_path, name, data):
    path = write(tmp_path, name, data)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["units", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "检查通过：4 个单位可以导入" in dry.output
    assert not Unit.query.filter_by(code="zb").count()
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 0 and "已导入 4 个单位" in result.output
    assert unit("zb-c1").path == "/county/town-c/zb/zb-c1/" and unit("zb-c1").kind == "class"
    assert unit("gc_1%").path == "/county/town-c/gc_1%/"
    assert len(audit_actions()) == 4
    again = runner.invoke(args=["units", "import", str(path)])  # the same file again changes nothing
    assert again.exit_code == 0 and "已导入 0 个单位（4 个已存在且相同，跳过）" in again.output


BAD_ROWS = [("单位编码", "单位名称", "上级编码", "类型"),
            ("ok-1", "好的一行", "county", "乡镇"),  # line 2
            ("ok-1", "重复", "county", "乡镇"),  # 3: duplicate code in the file
            ("town-a", "桂溪街道改名", "county", "街道"),  # 4: a code already used, differently
            ("lost", "无主", "nowhere", "村"),  # 5: unknown parent
            ("cyc-a", "甲", "cyc-b", "村"),  # 6, 7: a cycle
            ("cyc-b", "乙", "cyc-a", "村"),
            ("odd", "怪", "county", "星系"),  # 8: unknown kind
            ("noname", "", "county", "村"),  # 9: empty name
            ("", "无编码", "county", "村"),  # 10: empty code
            ("child", "孩子", "lost", "班级")]  # 11: its parent's row is bad


def test_every_bad_row_is_named_and_nothing_is_imported(app, tree, tmp_path):
    path = write(tmp_path, "bad.csv", csv_bytes(BAD_ROWS))
    before = Unit.query.count()
    result = app.test_cli_runner().invoke(args=["units", "import", str(path)])
    assert result.exit_code != 0 and "没有导入任何单位" in result.output
    expected = ["第 3 行：单位编码“ok-1”与第 2 行重复", "第 4 行：单位编码“town-a”已存在", "第 5 行：上级编码“nowhere”不存在",
                "第 6 行：上级编码形成循环：cyc-a → cyc-b → cyc-a", "第 7 行：上级编码形成循环：cyc-b → cyc-a → cyc-b",
                "第 8 行：类型“星系”无效", "第 9 行：单位名称为空", "第 10 行：单位编码为空",
                "第 11 行：上级单位“lost”（第 5 行）有错误"]
    for line in expected:
        assert line in result.output, (line, result.output)
    assert "错误 第 2 行" not in result.output
    assert Unit.query.count() == before and unit("town-a").name == "桂溪街道" and audit_actions() == []


def test_file_level_problems_are_named(app, tree, tmp_path):
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["units", "import", str(write(tmp_path, "a.csv", csv_bytes([("单位编码", "单位名称")])))])
    assert missing.exit_code != 0 and "缺少列" in missing.output and "上级编码" in missing.output
    garbage = runner.invoke(args=["units", "import", str(write(tmp_path, "b.xlsx", b"not a workbook"))])
    assert garbage.exit_code != 0 and "无法读取 Excel 文件" in garbage.output


def test_unit_admin_imports_below_their_unit_only(app, tree, tmp_path):
    from lms.accounts.units import import_units

    rows = [GOOD_ROWS[0], ("va2", "桂溪二村", "town-a", "村"), ("vx", "别处", "town-b", "村"), ("top", "顶级", "", "县")]
    report = import_units(write(tmp_path, "u.csv", csv_bytes(rows)), tree["ua_a"], dry_run=True)
    assert [str(p) for p in report.problems] == ["第 3 行：上级编码“town-b”不存在，或不在您的管辖范围内",
                                                 "第 4 行：上级编码为空：您只能在自己管辖的单位之下导入单位"]


def test_browser_import_checks_then_confirms(app, tree):
    client = client_for(app, tree["ua_a"])
    rows = [GOOD_ROWS[0], ("va2", "桂溪二村", "town-a", "村"), ("va2-c1", "二村一班", "va2", "班级")]
    checked = post(client, "/admin/units/import", {"file": (io.BytesIO(xlsx_bytes(rows)), "tree.xlsx")},
                   content_type="multipart/form-data")
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "检查通过：将添加 2 个单位" in page
    assert not Unit.query.filter_by(code="va2").count()  # nothing yet
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', page).group(1)
    done = post(client, "/admin/units/import/confirm", {"token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/admin/units"
    assert unit("va2-c1").path == "/county/town-a/va2/va2-c1/"
    assert "已导入 2 个单位" in client.get("/admin/units").get_data(as_text=True)
    # the confirmation works once
    assert post(client, "/admin/units/import/confirm", {"token": token}).status_code == 302
    assert Unit.query.filter(Unit.code.in_(["va2", "va2-c1"])).count() == 2


def test_browser_import_shows_a_table_of_bad_rows(app, tree):
    client = client_for(app, tree["admin"])
    response = post(client, "/admin/units/import", {"file": (io.BytesIO(csv_bytes(BAD_ROWS, "gbk")), "bad.csv")},
                    content_type="multipart/form-data")
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and 'id="import-problems"' in page and "没有导入任何单位" in page
    assert re.search(r'<td class="num">6</td><td>上级编码形成循环：cyc-a → cyc-b → cyc-a</td>', page)
    assert 'name="token"' not in page  # no confirmation offered
    wrong = post(client, "/admin/units/import", {"file": (io.BytesIO(b"x"), "tree.pdf")}, content_type="multipart/form-data")
    assert wrong.status_code == 400 and "只支持 .csv 或 .xlsx 文件" in field_error(wrong.get_data(as_text=True), "file")


def test_confirmation_rechecks_what_changed_meanwhile(app, tree):
    client = client_for(app, tree["admin"])
    rows = [GOOD_ROWS[0], ("va2", "桂溪二村", "town-a", "村")]
    page = post(client, "/admin/units/import", {"file": (io.BytesIO(csv_bytes(rows)), "t.csv")},
                content_type="multipart/form-data").get_data(as_text=True)
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', page).group(1)
    post(client, f"/admin/units/{tree['town_a'].id}/deactivate")
    response = post(client, "/admin/units/import/confirm", {"token": token})
    assert response.status_code == 400 and "上级单位“town-a”已停用" in response.get_data(as_text=True)
    assert not Unit.query.filter_by(code="va2").count()


def test_template_downloads_and_imports_as_it_is(app, tmp_path, make_user):
    admin = make_user("boss", role="admin", unit="county", audience="cadre")
    response = client_for(app, admin).get("/admin/units/import/template.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith("\ufeff单位编码,单位名称,上级编码,类型".encode())
    result = app.test_cli_runner().invoke(args=["units", "import", str(write(tmp_path, "t.csv", response.data))])
    assert result.exit_code == 0 and "已导入 5 个单位" in result.output
    assert unit("guixi-school-c1").path == "/dianjiang/guixi/guixi-school/guixi-school-c1/"


# ---- the picker -------------------------------------------------------------------------------

def test_search_finds_by_part_of_name_or_code_within_scope(app, tree):
    admin = client_for(app, tree["admin"])
    by_name = admin.get("/admin/units/search?q=一村").get_json()
    assert {u["code"] for u in by_name} == {"va1", "vb1", "va1-c1"}
    assert next(u for u in by_name if u["code"] == "va1")["within"] == "垫江县 › 桂溪街道"
    assert [u["code"] for u in admin.get("/admin/units/search?q=VA1-C").get_json()] == ["va1-c1"]  # any case
    assert admin.get("/admin/units/search?q=va1").get_json()[0]["code"] == "va1"  # the exact code first
    assert admin.get("/admin/units/search?q=%25").get_json() == []  # % is a character, not "anything"
    scoped = client_for(app, tree["ua_b"]).get("/admin/units/search?q=一村").get_json()
    assert [(u["code"], u["within"]) for u in scoped] == [("vb1", "澄溪镇")]


def test_picker_renders_as_a_plain_code_input_with_the_chosen_unit(app, tree):
    client = client_for(app, tree["admin"])
    page = client.get(f"/admin/units/new?parent={tree['va1'].id}").get_data(as_text=True)
    picker = re.search(r'<input[^>]*id="parent"[^>]*>', page).group(0)
    assert 'data-unit-picker="/admin/units/search"' in picker and 'value="va1"' in picker
    assert 'id="parent-chosen" aria-live="polite">桂溪一村（va1）</p>' in page
    assert '<script src="/static/js/unit-picker.js" defer></script>' in page
    assert "style=" not in page and "<script>" not in page
    moved = client.get(f"/admin/units/{tree['vb1'].id}").get_data(as_text=True)
    assert re.search(r'<input[^>]*data-unit-picker[^>]*name="parent"', moved)


# ---- two crossing moves at once -----------------------------------------------------------------

def test_crossing_moves_never_make_a_cycle(race_app):
    """A moved under B while B is moved under A, at the same moment, ten times: at most one of each pair
    succeeds, the other is told, and every path still matches its parent's."""
    import threading

    from lms.accounts.units import UnitError, move_unit

    with race_app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        pairs = [(get_or_create_unit(f"a{n}", f"甲{n}", "township", county).id,
                  get_or_create_unit(f"b{n}", f"乙{n}", "township", county).id) for n in range(10)]
        db.session.commit()
    outcomes = []

    def move(unit_id, parent_id, barrier):
        with race_app.app_context():
            try:
                barrier.wait()
                move_unit(None, db.session.get(Unit, unit_id), db.session.get(Unit, parent_id))
                outcomes.append("moved")
            except UnitError as exc:
                outcomes.append(str(exc))
            finally:
                db.session.remove()

    for a, b in pairs:
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=move, args=(a, b, barrier)), threading.Thread(target=move, args=(b, a, barrier))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(outcomes) == 20 and outcomes.count("moved") == 10, outcomes
    assert all(o == "moved" or "改动过" in o or "下级单位之下" in o for o in outcomes), outcomes
    with race_app.app_context():
        every = {u.id: u for u in Unit.query}
        for u in every.values():
            assert u.path == (every[u.parent_id].path if u.parent_id else "/") + u.code + "/", u.code
