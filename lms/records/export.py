"""Training-hour exports: detail and per-person summary, CSV (UTF-8 with BOM) and XLSX.

Column names are a contract (DESIGN.md, Part 1). Every text cell that starts with
= + - @ | % (or their full-width forms) or a tab/CR is prefixed with an apostrophe so a spreadsheet
never runs it; numbers are written as numbers, so a correction's -1.00 stays -1.00.
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import NamedTuple

from lms.audiences import AUDIENCE_CODES, audience_label
from lms.records.services import annual_target, records_query, summary_query, to_local
from lms.records.xlsx import SheetWriter

DETAIL_COLUMNS = [
    ("record_id", "记录编号"),
    ("name", "姓名"),
    ("username", "账号"),
    ("unit", "单位"),
    ("unit_code", "单位编码"),
    ("audience", "人群"),
    ("activity", "课程/活动"),
    ("type", "类型"),
    ("hours", "学时"),
    ("watched_minutes", "观看时长(分钟)"),
    ("quiz_score", "测验成绩"),
    ("completed_at", "完成时间"),
    ("certificate_no", "证书编号"),
]
SUMMARY_COLUMNS = [
    ("name", "姓名"),
    ("username", "账号"),
    ("unit", "单位"),
    ("unit_code", "单位编码"),
    ("audience", "人群"),
    ("total_hours", "学时合计"),
    ("annual_target", "年度目标"),
    ("target_met", "是否达标"),
]
# the columns that hold numbers: printed as they are in CSV, number cells in XLSX
NUMBER_COLUMNS = frozenset({"record_id", "hours", "watched_minutes", "quiz_score", "total_hours", "annual_target"})
# 类型 in the export is a closed list (DESIGN.md: 线上课程/线下活动/更正): a contest, taken online, is
# 线上课程, its record titled 知识竞赛：… (lms/contests/services.py) so that the 课程/活动 column says which.
KIND_LABELS = {"course": ("线上课程", "online course"), "offline": ("线下活动", "offline activity"),
               "correction": ("更正", "correction"), "contest": ("线上课程", "online course")}
# Full-width forms too: a Chinese IME types them, and spreadsheets may read them as the ASCII ones.
FORMULA_PREFIXES = ("=", "+", "-", "@", "|", "%", "\t", "\r", "＝", "＋", "－", "＠", "｜", "％")


def neutralise(text: str) -> str:
    """A text cell a spreadsheet shows as text: an apostrophe before a formula-like start."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def csv_cell(value) -> str:
    """Numbers as they are, None empty, anything else is text and neutralised."""
    if value is None:
        return ""
    return str(value) if is_number(value) else neutralise(str(value))


def headers(columns, lang: str) -> list[str]:
    return [zh if lang == "zh" else key for key, zh in columns]


def audience_names(lang: str) -> dict[str, str]:
    """Audience code → the name an export writes, looked up once (a gettext per row costs half the time)."""
    return {code: audience_label(code) if lang == "zh" else code for code in AUDIENCE_CODES}


def detail_rows(query, lang: str = "zh"):
    """Yield one dict per ledger record (values typed: Decimal, int, str)."""
    audiences = audience_names(lang)
    for record, user, unit in query.yield_per(500):
        kind_zh, kind_en = KIND_LABELS.get(record.kind, (record.kind, record.kind))
        yield {
            "record_id": record.id,
            "name": user.full_name,
            "username": user.username,
            "unit": unit.name,
            "unit_code": unit.code,
            "audience": audiences.get(user.audience, user.audience),
            "activity": record.title,
            "type": kind_zh if lang == "zh" else kind_en,
            "hours": record.hours,
            "watched_minutes": record.watched_minutes,
            "quiz_score": record.quiz_score,
            "completed_at": to_local(record.earned_at).isoformat(timespec="seconds"),
            "certificate_no": record.certificate_no,
        }


def summary_rows(query, lang: str = "zh"):
    """One row per person from services.summary_query: the database sums, rows stream through."""
    targets = {code: annual_target(code) for code in AUDIENCE_CODES}  # before the cursor opens
    audiences = audience_names(lang)
    yes, no, untargeted = ("是", "否", "无目标") if lang == "zh" else ("yes", "no", "no target")
    for person in query.yield_per(500):
        target = targets.get(person.audience, Decimal("0"))
        total = person.total_hours or Decimal("0")
        yield {
            "name": person.full_name,
            "username": person.username,
            "unit": person.unit_name,
            "unit_code": person.unit_code,
            "audience": audiences.get(person.audience, person.audience),
            "total_hours": total,
            "annual_target": target,
            "target_met": untargeted if not target else yes if total >= target else no,  # 0 = no target
        }


class Export(NamedTuple):
    columns: list
    query: object  # for a count (a progress bar)
    rows: object  # an iterator of row dicts


def export_rows(summary: bool, date_from=None, date_to=None, unit=None, audience=None,
                lang: str = "zh") -> Export:
    """The detail or per-person summary export for the filters (unit = its whole subtree)."""
    if summary:
        query = summary_query(date_from, date_to, unit, audience)
        return Export(SUMMARY_COLUMNS, query, summary_rows(query, lang))
    query = records_query(date_from, date_to, unit, audience)
    return Export(DETAIL_COLUMNS, query, detail_rows(query, lang))


def iter_csv(columns, rows, lang: str = "zh"):
    """The CSV (BOM, header, rows) as a stream of text chunks, for files and streamed responses."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(headers(columns, lang))
    for row in rows:
        writer.writerow([csv_cell(row[key]) for key, _ in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(stream, columns, rows, lang: str = "zh") -> None:
    for chunk in iter_csv(columns, rows, lang):
        stream.write(chunk)


def write_xlsx(path_or_stream, columns, rows, lang: str = "zh") -> int:
    """XLSX in constant memory (lms/records/xlsx.py). Text always goes in as a string cell (never a
    formula, never raw XML), and neutralised as in CSV for when it is copied out."""
    keys = [key for key, _ in columns]
    numeric = [key in NUMBER_COLUMNS for key in keys]
    with SheetWriter(path_or_stream, "学时" if lang == "zh" else "hours", headers(columns, lang), numeric) as sheet:
        sheet.write_rows([row[key] if number or row[key] is None else neutralise(str(row[key]))
                          for key, number in zip(keys, numeric)] for row in rows)
    return sheet.count
