"""Bulk users from a spreadsheet: CSV (UTF-8 with or without BOM, or GBK as Excel in China
writes it) or XLSX. Every row is checked first; any bad row names its line and reason and
nothing is imported (all-or-nothing)."""
from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import gettext as _

from lms.accounts.models import ROLES, Unit, User
from lms.accounts.services import AccountError, create_user
from lms.audiences import AUDIENCE_CODES, AUDIENCES
from lms.extensions import db

# Accepted headers (Chinese as the template shows them, or English) → field
HEADERS = {
    "账号": "username", "username": "username",
    "姓名": "full_name", "name": "full_name", "full_name": "full_name",
    "人群": "audience", "audience": "audience",
    "单位编码": "unit", "unit": "unit", "unit_code": "unit",
    "角色": "role", "role": "role",
    "密码": "password", "password": "password",
    "手机号": "phone", "手机": "phone", "phone": "phone",
}
ROLE_LABELS = {"学员": "learner", "教师": "instructor", "单位管理员": "unit_admin", "管理员": "admin"}
AUDIENCE_LABELS = {str(label): code for code, label in AUDIENCES.items()}
PHONE_RE = re.compile(r"^\+?[0-9]{6,20}$")  # after clean_phone
# (role, unit code) → why the importing user may not place such a row there, or None
Placement = Callable[[str, str], "str | None"]


def clean_phone(text: str | None) -> str:
    """A phone number as stored and searched: spaces and dashes dropped ("" for none)."""
    return re.sub(r"[\s-]", "", text or "")


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, format, headers)."""


@dataclass
class RowProblem:
    line: int
    message: str

    def __str__(self):
        return _("第 %(line)d 行：%(message)s", line=self.line, message=self.message)


@dataclass
class ImportReport:
    rows: list[dict] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)  # (username, generated password or "")


def decode_csv(raw: bytes) -> str:
    """UTF-8 (BOM or not) first; then GB18030, the superset of the GBK Excel writes."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(_("文件编码无法识别：请另存为 UTF-8 或 GBK 编码的 CSV，或 Excel（.xlsx）文件"))


def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(spreadsheet line number, {field: text}) for each non-empty data row."""
    return read_sheet(path, HEADERS, {"username", "full_name", "audience", "unit"},
                      _("需要 账号、姓名、人群、单位编码，可选 角色、密码、手机号"))


def read_sheet(path: Path, headers: dict[str, str], required: set[str], hint: str) -> list[tuple[int, dict]]:
    """Any import's reader: CSV (encoding detected) or XLSX, the first row naming the columns through
    `headers` (header text → field); (line number, {field: text}) for each non-empty data row."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            sheet = load_workbook(path, read_only=True, data_only=True).active
        except Exception as exc:
            raise ImportFileError(_("无法读取 Excel 文件：%(error)s", error=exc.__class__.__name__)) from None
        table = [["" if v is None else str(v).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
    elif path.suffix.lower() in (".csv", ".txt"):
        table = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(decode_csv(path.read_bytes())))]
    else:
        raise ImportFileError(_("只支持 .csv 或 .xlsx 文件"))
    if not table:
        raise ImportFileError(_("文件是空的"))
    header = [headers.get(name.strip().lower(), headers.get(name.strip())) for name in table[0]]
    missing = required - set(header)
    if missing:
        raise ImportFileError(_("缺少列：%(columns)s（%(hint)s）", columns="、".join(sorted(missing)), hint=hint))
    rows = []
    for line, values in enumerate(table[1:], start=2):
        if not any(values):
            continue
        rows.append((line, {key: (values[i] if i < len(values) else "") for i, key in enumerate(header) if key}))
    return rows


def check_rows(rows: list[tuple[int, dict]], placement: Placement | None = None) -> ImportReport:
    """Every problem of every row; `placement` adds what the importing user may not do (a unit outside
    their subtree, a role they cannot give)."""
    report = ImportReport()
    seen: dict[str, int] = {}
    units = {u.code for u in Unit.query.with_entities(Unit.code)}
    existing = {u for (u,) in db.session.query(User.username)}
    for line, row in rows:
        username = row.get("username", "")
        audience = AUDIENCE_LABELS.get(row.get("audience", ""), row.get("audience", ""))
        role = ROLE_LABELS.get(row.get("role", ""), row.get("role", "") or "learner")
        problems = []
        if not username:
            problems.append(_("账号为空"))
        elif username in existing:
            problems.append(_("账号“%(name)s”已存在", name=username))
        elif username in seen:
            problems.append(_("账号“%(name)s”与第 %(line)d 行重复", name=username, line=seen[username]))
        if not row.get("full_name"):
            problems.append(_("姓名为空"))
        # the values a file may hold (Chinese labels, as the template writes them), whatever the page's language
        if audience not in AUDIENCE_CODES:
            problems.append(_("人群“%(value)s”无效（可填：%(choices)s）", value=row.get("audience", ""),
                              choices="、".join(AUDIENCE_LABELS)))
        if role not in ROLES:
            problems.append(_("角色“%(value)s”无效（可填：%(choices)s）", value=row.get("role"),
                              choices="、".join(ROLE_LABELS)))
        if row.get("unit") not in units:
            problems.append(_("单位编码“%(code)s”不存在", code=row.get("unit", "")))
        if row.get("password") and len(row["password"]) < 8:
            problems.append(_("密码至少 8 位"))
        if clean_phone(row.get("phone")) and not PHONE_RE.match(clean_phone(row.get("phone"))):
            problems.append(_("手机号“%(phone)s”无效", phone=row["phone"]))
        if placement and role in ROLES and row.get("unit") in units:
            problem = placement(role, row["unit"])
            if problem:
                problems.append(problem)
        seen.setdefault(username, line)
        report.problems += [RowProblem(line, p) for p in problems]
        report.rows.append({**row, "audience": audience, "role": role, "line": line})
    return report


def import_users(path: Path, dry_run: bool = False, placement: Placement | None = None,
                 on_create: Callable[[User, bool], None] | None = None) -> ImportReport:
    """Check every row; when all are good (and not a dry run) create them in one transaction.
    `on_create(user, password_was_generated)` runs for each new user inside that transaction."""
    report = check_rows(read_rows(Path(path)), placement)
    if report.problems or dry_run:
        return report
    try:
        for row in report.rows:
            password = row.get("password") or secrets.token_urlsafe(9)
            user = create_user(row["username"], row["full_name"], password, row["role"], row["audience"], row["unit"])
            user.phone = clean_phone(row.get("phone")) or None
            if on_create:
                on_create(user, not row.get("password"))
            report.created.append((row["username"], "" if row.get("password") else password))
        db.session.commit()
    except AccountError as exc:  # checked above; only a concurrent change gets here
        db.session.rollback()
        report.problems.append(RowProblem(row["line"], str(exc)))
        report.created.clear()
    return report
