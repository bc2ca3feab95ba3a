"""Training-hour exports: detail and per-person summary, CSV (UTF-8 with BOM) and XLSX.

Column names are a contract (DESIGN.md, Part 1). Every CSV cell that starts with
= + - @ | % or a tab/CR is prefixed with an apostrophe so a spreadsheet never runs it.
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import xlsxwriter

from lms.audiences import audience_label
from lms.records.services import annual_target, to_local

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
KIND_LABELS = {"course": ("线上课程", "online course"), "offline": ("线下活动", "offline activity"),
               "correction": ("更正", "correction")}
FORMULA_PREFIXES = ("=", "+", "-", "@", "|", "%", "\t", "\r")


def neutralise(value) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def headers(columns, lang: str) -> list[str]:
    return [zh if lang == "zh" else key for key, zh in columns]


def detail_rows(query, lang: str = "zh"):
    """Yield one dict per ledger record (values typed: Decimal, int, str)."""
    for record, user, unit in query.yield_per(500):
        kind_zh, kind_en = KIND_LABELS.get(record.kind, (record.kind, record.kind))
        yield {
            "record_id": record.id,
            "name": user.full_name,
            "username": user.username,
            "unit": unit.name,
            "unit_code": unit.code,
            "audience": audience_label(user.audience) if lang == "zh" else user.audience,
            "activity": record.title,
            "type": kind_zh if lang == "zh" else kind_en,
            "hours": record.hours,
            "watched_minutes": record.watched_minutes,
            "quiz_score": record.quiz_score,
            "completed_at": to_local(record.earned_at).isoformat(timespec="seconds"),
            "certificate_no": record.certificate_no,
        }


def summary_rows(query, lang: str = "zh"):
    totals: dict[int, dict] = {}
    for record, user, unit in query:
        row = totals.setdefault(user.id, {
            "name": user.full_name,
            "username": user.username,
            "unit": unit.name,
            "unit_code": unit.code,
            "audience": audience_label(user.audience) if lang == "zh" else user.audience,
            "total_hours": Decimal("0"),
            "annual_target": annual_target(user.audience),
        })
        row["total_hours"] += record.hours
    yes, no = ("是", "否") if lang == "zh" else ("yes", "no")
    for row in sorted(totals.values(), key=lambda r: (r["unit_code"], r["username"])):
        row["target_met"] = yes if row["annual_target"] and row["total_hours"] >= row["annual_target"] else no
        yield row


def iter_csv(columns, rows, lang: str = "zh"):
    """The CSV (BOM, header, rows) as a stream of text chunks, for files and streamed responses."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(headers(columns, lang))
    for row in rows:
        writer.writerow([neutralise(row[key]) for key, _ in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(stream, columns, rows, lang: str = "zh") -> None:
    for chunk in iter_csv(columns, rows, lang):
        stream.write(chunk)


def write_xlsx(path_or_stream, columns, rows, lang: str = "zh") -> int:
    """XLSX in constant memory: rows are flushed to disk as they are written."""
    workbook = xlsxwriter.Workbook(path_or_stream, {"constant_memory": True, "strings_to_formulas": False,
                                                    "strings_to_urls": False, "in_memory": False})
    sheet = workbook.add_worksheet("学时" if lang == "zh" else "hours")
    bold = workbook.add_format({"bold": True})
    sheet.write_row(0, 0, headers(columns, lang), bold)
    count = 0
    for count, row in enumerate(rows, start=1):
        for col, (key, _) in enumerate(columns):
            value = row[key]
            if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                sheet.write_number(count, col, float(value))
            elif value is None:
                sheet.write_blank(count, col, None)
            else:
                sheet.write_string(count, col, neutralise(value))
    workbook.close()
    return count
