"""Certificates: a PDF per completed course (结业证书) and a yearly 学时证明 per person, each with a
verification code and a QR code to the public page /verify/<code>.

- A course certificate's code is its record's certificate_no (lms/records/services.certificate_number).
- A yearly one's is stored in YearCertificate, made on the first download and reused after, so its address
  never changes; it keeps the 学时 as issued, and /verify says when the year's total has changed since.
- Codes carry ≥ 48 random bits, so /verify cannot be walked; a malformed code is refused before any query.
- PDFs embed a subset of a CJK font found on this machine (Noto Sans CJK SC from fonts-noto-cjk, which
  scripts/setup installs; fpdf2 embeds its CFF outlines as FontFile3) — LMS_CERTIFICATE_FONT overrides.
"""
from __future__ import annotations

import gc
import os
import re
import secrets
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache, wraps
from pathlib import Path

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from lms.accounts.models import User, utcnow
from lms.accounts.scope import oversight_root, unit_in_subtree
from lms.audiences import audience_label
from lms.extensions import db
from lms.records.corrections import reversal_of, reversed_ids
from lms.records.export import KIND_LABELS
from lms.records.models import TrainingRecord
from lms.records.services import my_hours, to_local

OVERSEER_ROLES = ("admin", "unit_admin")
# KP<year>-<course>-<user>-<hex> (course records; 6 hex digits before the tail was lengthened) or
# XS<year>-<16 hex> (yearly). Anything else is malformed and answered without touching the database.
CODE_RE = re.compile(r"^(?:KP\d{4}-\d{1,10}-\d{1,10}-[0-9A-F]{6,16}|XS\d{4}-[0-9A-F]{16})$", re.ASCII)
MAX_CODE = 40
FONT_CANDIDATES = (  # (file, face in a collection): Simplified Chinese first
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)


class MalformedCode(ValueError):
    """A verification code of the wrong characters or length."""


class NoCertificate(LookupError):
    """Nothing to certify (a reversed course record, a year without records); `message` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class YearCertificate(db.Model):
    """The 学时证明 of one person for one year, as first issued: its code never changes."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    year = db.Column(db.Integer, nullable=False)
    code = db.Column(db.String(40), nullable=False, unique=True)
    issued_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    hours = db.Column(db.Numeric(8, 2), nullable=False)  # the year's total when issued

    user = db.relationship(User)

    __table_args__ = (db.UniqueConstraint("user_id", "year", name="uq_year_certificate_user_year"),)


# ---- who may download -------------------------------------------------------------------------

def may_download(viewer, person: User) -> bool:
    """Their own; or, for an admin or unit admin, anyone in the subtree they oversee."""
    if viewer.id == person.id:
        return True
    return viewer.role in OVERSEER_ROLES and unit_in_subtree(person.unit, oversight_root(viewer))


def course_record(record: TrainingRecord) -> TrainingRecord:
    """The record as a certificate's subject: a credited course with a number, not reversed."""
    if record.kind != "course" or not record.certificate_no:
        raise NoCertificate(_("这条记录没有结业证书"))
    if reversal_of(record) is not None:
        raise NoCertificate(_("这条记录已撤销，不能再下载证书"))
    return record


def year_certificate(person: User, year: int) -> YearCertificate:
    """The person's 学时证明 for `year`: made on the first call (with the year's total), reused after."""
    row = YearCertificate.query.filter_by(user_id=person.id, year=year).first()
    if row is not None:
        return row
    summary = my_hours(person, year)
    if not summary["records"]:
        raise NoCertificate(_("%(year)s 年度没有学时记录", year=year))
    row = YearCertificate(user_id=person.id, year=year, code=f"XS{year}-{secrets.token_hex(8).upper()}",
                          issued_at=utcnow(), hours=summary["total"])
    try:
        with db.session.begin_nested():
            db.session.add(row)
        db.session.commit()
        return row
    except IntegrityError:  # a concurrent first download made it
        db.session.rollback()
        return YearCertificate.query.filter_by(user_id=person.id, year=year).one()


# ---- /verify ----------------------------------------------------------------------------------

def normalise_code(code: str) -> str:
    code = (code or "").strip().upper()
    if len(code) > MAX_CODE or not CODE_RE.match(code):
        raise MalformedCode(code[:MAX_CODE])
    return code


def mask_name(name: str) -> str:
    """张*英: first and last character kept, the middle masked; 张* for names of two (or one)."""
    name = (name or "").strip()
    if len(name) <= 2:
        return name[:1] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


@dataclass
class Verification:
    kind: str  # "course" or "year"
    masked_name: str
    subject: str  # the course's title, or "2025 年度"
    hours: Decimal  # as certified
    date: datetime  # earned (course) or issued (year), naive UTC
    unit_name: str
    revoked: bool = False  # a course record reversed since
    current_hours: Decimal | None = None  # a year's total now, when it differs from `hours`


def verify(code: str) -> Verification | None:
    """What /verify shows for `code` (MalformedCode when it cannot be one; None when none was issued)."""
    code = normalise_code(code)
    if code.startswith("KP"):
        record = TrainingRecord.query.filter_by(certificate_no=code).first()
        if record is None or record.kind != "course":
            return None
        return Verification("course", mask_name(record.user.full_name), record.title, record.hours, record.earned_at,
                            record.user.unit.name, revoked=reversal_of(record) is not None)
    row = YearCertificate.query.filter_by(code=code).first()
    if row is None:
        return None
    total = my_hours(row.user, row.year)["total"]
    return Verification("year", mask_name(row.user.full_name), f"{row.year} 年度", row.hours, row.issued_at,
                        row.user.unit.name, current_hours=None if total == row.hours else total)


def verify_url(code: str) -> str:
    return url_for("certificates.verify", code=code, _external=True)


# ---- PDF --------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def certificate_font() -> tuple[str, int]:
    """(font file, face number): LMS_CERTIFICATE_FONT ("path" or "path#face"), else the first installed."""
    configured = os.environ.get("LMS_CERTIFICATE_FONT", "").strip()
    if configured:
        path, _, face = configured.partition("#")
        return path, int(face or 0)
    for path, face in FONT_CANDIDATES:
        if Path(path).exists():
            return path, face
    raise RuntimeError("没有找到中文字体：请安装 fonts-noto-cjk（apt-get install fonts-noto-cjk），"
                       "或用 LMS_CERTIFICATE_FONT 指定字体文件")


def _hours(value) -> str:
    from lms.templating import format_hours

    return format_hours(value)


def _date(moment: datetime) -> str:
    local = to_local(moment)
    return f"{local.year} 年 {local.month} 月 {local.day} 日"


_drawing = threading.Lock()


def _one_at_a_time(draw):
    """One PDF at a time per process: embedding the CJK font parses it (~45 MB while a PDF is drawn), so
    four threads drawing at once would quadruple that (scripts/bench/memory.py). The drawing's fpdf2 and
    fontTools objects refer to each other, so they outlive it until the collector's next full pass, which
    may be long in coming: collected right away (~15 ms, against ~0.8 s of drawing), a worker holds ~35 MB
    less (measured)."""
    @wraps(draw)
    def wrapper(*args, **kwargs):
        with _drawing:
            try:
                return draw(*args, **kwargs)
            finally:
                gc.collect()
    return wrapper


# Drawn certificates by what they show: drawing one costs ~0.8 s of CPU (parsing and subsetting the CJK
# font), so asking for the same certificate again — a double tap, a refresh, a script — costs a lookup.
# A certificate is 24–40 KB: 128 of them hold about 4 MB per process.
PDF_CACHE_SIZE = 128
_drawn: OrderedDict[str, bytes] = OrderedDict()
_drawn_lock = threading.Lock()


def _cached_pdf(shown: tuple, draw) -> bytes:
    """The PDF of a certificate showing `shown` (every value printed on it), drawn by `draw()` only when
    no certificate showing exactly that was drawn lately in this process."""
    key = hashlib.sha256("\x1f".join(map(str, shown)).encode()).hexdigest()
    with _drawn_lock:
        if key in _drawn:
            _drawn.move_to_end(key)
            return _drawn[key]
    data = draw()
    with _drawn_lock:
        _drawn[key] = data
        while len(_drawn) > PDF_CACHE_SIZE:
            _drawn.popitem(last=False)
    return data


def _new_pdf(orientation: str, title: str):
    from fpdf import FPDF

    pdf = FPDF(orientation=orientation, unit="mm", format="A4")
    path, face = certificate_font()
    pdf.add_font("cjk", fname=path, collection_font_number=face)
    pdf.set_font("cjk", size=14)
    pdf.set_title(title)
    pdf.set_creator("科普学堂")
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    return pdf


def _draw_qr(pdf, url: str, x: float, y: float, size: float) -> None:
    """The QR code as filled rectangles (vector, no image library), linking to `url` when clicked."""
    import segno

    matrix = segno.make(url, error="m").matrix
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")
            else:
                c += 1
    pdf.link(x, y, size, size, url)


def _verification_block(pdf, code: str, x: float, y: float) -> None:
    url = verify_url(code)
    _draw_qr(pdf, url, x, y, 32)
    pdf.set_font_size(10)
    pdf.set_xy(x - 14, y + 33)
    pdf.cell(60, 5, "扫码核验证书真伪", align="C")


def course_pdf(record: TrainingRecord) -> bytes:
    record = course_record(record)
    person = record.user
    shown = ("course", record.certificate_no, person.full_name, person.unit.name, record.title, record.hours,
             record.earned_at, verify_url(record.certificate_no))
    return _cached_pdf(shown, lambda: _draw_course_pdf(record))


@_one_at_a_time
def _draw_course_pdf(record: TrainingRecord) -> bytes:
    person = record.user
    pdf = _new_pdf("L", f"结业证书 {record.certificate_no}")
    pdf.set_draw_color(160, 40, 40)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, 277, 190)
    pdf.set_line_width(0.4)
    pdf.rect(14, 14, 269, 182)
    pdf.set_y(34)
    pdf.set_font_size(16)
    pdf.cell(0, 10, "科普学堂", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(40)
    pdf.cell(0, 22, "结业证书", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font_size(18)
    pdf.set_x(40)
    pdf.multi_cell(217, 12, f"兹证明 {person.full_name}（{person.unit.name}）于 {_date(record.earned_at)}"
                            f"完成线上课程《{record.title}》的学习并通过考核，获得 {_hours(record.hours)} 学时。",
                   align="L", wrapmode="CHAR", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(12)
    pdf.set_xy(40, 158)
    pdf.cell(150, 7, f"证书编号：{record.certificate_no}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(40)
    pdf.cell(150, 7, f"发证单位：{person.unit.name}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(40)
    pdf.cell(150, 7, f"发证日期：{_date(record.earned_at)}", new_x="LMARGIN", new_y="NEXT")
    _verification_block(pdf, record.certificate_no, 236, 150)
    return bytes(pdf.output())


def year_pdf(person: User, year: int) -> tuple[YearCertificate, bytes]:
    """The yearly 学时证明: the year's records as they stand now, the total against the target."""
    certificate = year_certificate(person, year)
    summary = my_hours(person, year)
    reversed_now = reversed_ids(summary["records"])
    shown = ("year", certificate.code, person.full_name, person.unit.name, person.audience, summary["target"],
             _date(utcnow()), verify_url(certificate.code),
             *((r.id, r.title, r.kind, r.hours, r.earned_at, r.id in reversed_now) for r in summary["records"]))
    return certificate, _cached_pdf(shown, lambda: _draw_year_pdf(person, year, certificate, summary, reversed_now))


@_one_at_a_time
def _draw_year_pdf(person: User, year: int, certificate: YearCertificate, summary: dict, reversed_now) -> bytes:
    pdf = _new_pdf("P", f"{year} 年度学时证明 {certificate.code}")
    pdf.set_font_size(24)
    pdf.cell(0, 16, f"{year} 年度学时证明", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(13)
    pdf.cell(0, 9, f"姓名：{person.full_name}    单位：{person.unit.name}    人群：{audience_label(person.audience)}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font_size(11)
    from fpdf.fonts import FontFace

    with pdf.table(col_widths=(32, 98, 26, 24), headings_style=FontFace(emphasis=""), wrapmode="CHAR",
                   text_align=("LEFT", "LEFT", "LEFT", "RIGHT"), line_height=7) as table:
        table.row(("完成时间", "课程/活动", "类型", "学时"))
        for record in reversed(summary["records"]):  # oldest first
            title = record.title + ("（已撤销）" if record.id in reversed_now else "")
            table.row((to_local(record.earned_at).strftime("%Y-%m-%d"), title,
                       KIND_LABELS.get(record.kind, (record.kind,))[0], _hours(record.hours)))
    pdf.ln(4)
    pdf.set_font_size(13)
    target = summary["target"]
    line = f"合计 {_hours(summary['total'])} 学时"
    if target:
        line += f"；年度目标 {_hours(target)} 学时，{'已达成' if summary['met'] else '未达成'}"
    pdf.multi_cell(0, 9, line + "。", wrapmode="CHAR", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(11)
    pdf.cell(0, 7, f"证明编号：{certificate.code}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, f"出具单位：{person.unit.name}    出具日期：{_date(utcnow())}", new_x="LMARGIN", new_y="NEXT")
    if pdf.get_y() > 297 - 18 - 42:
        pdf.add_page()
    _verification_block(pdf, certificate.code, 160, pdf.get_y() + 4)
    return bytes(pdf.output())
