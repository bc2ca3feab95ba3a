"""The console's navigation: one line per section — (endpoint, label, roles allowed to use it).

To add a section, append one line. An entry whose endpoint is not registered (yet) is skipped, so a
line may be added before its view exists. The layout shows a user only the entries of their role.
"""
from __future__ import annotations

from flask import current_app, request, url_for
from flask_babel import lazy_gettext as _l

ADMIN = ("admin",)
OVERSEERS = ("admin", "unit_admin")
AUTHORS = ("admin", "instructor")
CONSOLE_ROLES = ("admin", "unit_admin", "instructor")

NAV: list[tuple[str, object, tuple[str, ...]]] = [
    ("admin.home", _l("概览"), CONSOLE_ROLES),
    ("units.tree", _l("单位"), OVERSEERS),
    ("people.index", _l("人员"), OVERSEERS),
    ("authoring.courses", _l("课程"), AUTHORS),
    ("quiz_editor.index", _l("测验"), AUTHORS),
    ("media.overview", _l("视频"), AUTHORS),
    ("classroom.classes", _l("班级平板"), CONSOLE_ROLES),  # outside /admin: the teacher's tablet classes
    ("activities.index", _l("线下活动"), CONSOLE_ROLES),  # organisers: admin, unit_admin, instructor
    ("contests.index", _l("知识竞赛"), OVERSEERS),  # organisers: admin, unit_admin (lms/contests)
    ("assignments.manage", _l("学习任务"), ADMIN),
    ("assignments.report", _l("学习任务"), ("unit_admin",)),
    ("dashboard.index", _l("统计图表"), OVERSEERS),
    ("assessment.report", _l("科学素质自测"), OVERSEERS),  # lms/assessment/report.py
    ("records.export_page", _l("学时导出"), OVERSEERS),
    ("closing.index", _l("年度关账"), OVERSEERS),
    ("admin.audit", _l("审计日志"), OVERSEERS),
]


def nav_items(user) -> list[dict]:
    """The sections `user` may open, with the one the current page belongs to marked."""
    if not getattr(user, "is_authenticated", False):
        return []
    items = []
    for endpoint, label, roles in NAV:
        if user.role not in roles or endpoint not in current_app.view_functions:
            continue
        url = url_for(endpoint)
        current = request.path == url or (endpoint != "admin.home" and request.path.startswith(url.rstrip("/") + "/"))
        items.append({"endpoint": endpoint, "label": label, "url": url, "current": current})
    return items


def may_use_console(user) -> bool:
    return getattr(user, "is_authenticated", False) and user.role in CONSOLE_ROLES
