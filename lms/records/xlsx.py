"""One worksheet of typed cells, written in constant memory and ten times faster than cell by cell.

xlsxwriter makes the package (styles, workbook, the bold header row); the rows' XML is streamed to a
temporary file here, in the form xlsxwriter itself writes in constant_memory mode (inline strings,
numbers as `%.16G`, control characters as _xHHHH_), then spliced into the package's sheet. Per cell
xlsxwriter costs ~13 µs — 17 s for an export of 100,000 records; this costs ~1 µs.

Text is always escaped: xlsxwriter (constant_memory) writes a string that starts with "<r>" and ends
with "</r>" as raw XML (a "rich string"), so a hostile name could inject a formula cell; here it is text.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from decimal import Decimal
from pathlib import Path

MAX_ROWS = 1_048_576  # Excel's limit, the header included
MAX_TEXT = 32_767  # Excel's limit for one cell, in UTF-16 units
SHEET = "xl/worksheets/sheet1.xml"
# what makes a text cell need more than copying (the rest is written as it is)
_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_|^\s|\s$")
_ESCAPED_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')


class TooManyRows(ValueError):
    """More rows than an Excel worksheet holds."""

    def __init__(self, rows: int):
        super().__init__(f"{rows} rows; an Excel worksheet holds {MAX_ROWS - 1} below its header")
        self.rows = rows


def text_xml(text: str) -> str:
    """A string cell's <is> body, as xlsxwriter writes it in constant_memory mode (never rich text)."""
    if len(text) <= MAX_TEXT // 2 and not _SPECIAL.search(text):
        return f"<t>{text}</t>"
    if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:
        text = text.encode("utf-16-le")[: 2 * MAX_TEXT].decode("utf-16-le", "ignore")
    text = _ESCAPED_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda match: f"_x{ord(match.group(1)):04X}_", text)
    text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    preserve = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<t{preserve}>{text}</t>"


def number_xml(value) -> str:
    return f"{float(value) if isinstance(value, Decimal) else value:.16G}"


class SheetWriter:
    """`with SheetWriter(target, sheet_name, headers, numeric) as sheet: sheet.write_rows(rows)` —
    rows are sequences in header order; `numeric[i]` says column i holds numbers (None = empty cell).
    `target` is a path or a binary file object; nothing reaches it before the last row is written."""

    def __init__(self, target, sheet_name: str, headers: list[str], numeric: list[bool]):
        self.target, self.sheet_name, self.headers = target, sheet_name, headers
        self.folder = tempfile.TemporaryDirectory(prefix="xlsx-")
        self.rows_file = open(Path(self.folder.name) / "rows.xml", "w", encoding="utf-8", newline="")
        from xlsxwriter.utility import xl_col_to_name  # here: only exporting processes load xlsxwriter

        letters = [xl_col_to_name(col) for col in range(len(headers))]
        self.cells = [(f'<c r="{letter}', '"><v>' if number else '" t="inlineStr"><is>', number)
                      for letter, number in zip(letters, numeric)]
        self.last_col = letters[-1]
        self.count = 0

    def write_rows(self, rows) -> int:
        """Append rows (any iterable, written a thousand at a time); returns how many were written."""
        before, batch = self.count, []
        for row in rows:
            batch.append(row)
            if len(batch) == 1000:
                self._write(batch)
                batch = []
        self._write(batch)
        return self.count - before

    def _write(self, rows: list) -> None:
        if self.count + len(rows) >= MAX_ROWS:
            raise TooManyRows(self.count + len(rows))
        out = []
        for n, row in enumerate(rows, start=self.count + 2):  # the header is row 1
            parts = [f'<row r="{n}">']
            for (start, middle, number), value in zip(self.cells, row):
                if value is None:
                    continue
                if number:
                    parts.append(f"{start}{n}{middle}{number_xml(value)}</v></c>")
                else:
                    parts.append(f"{start}{n}{middle}{text_xml(value)}</is></c>")
            parts.append("</row>")
            out.append("".join(parts))
        self.count += len(rows)
        self.rows_file.write("".join(out))

    def close(self) -> int:
        """Write the workbook to the target; returns the number of rows below the header."""
        self.rows_file.close()
        template = Path(self.folder.name) / "template.xlsx"
        import xlsxwriter

        workbook = xlsxwriter.Workbook(str(template), {"constant_memory": True, "strings_to_formulas": False,
                                                       "strings_to_urls": False, "in_memory": False})
        sheet = workbook.add_worksheet(self.sheet_name)
        sheet.write_row(0, 0, self.headers, workbook.add_format({"bold": True}))
        workbook.close()
        with zipfile.ZipFile(template) as source, zipfile.ZipFile(self.target, "w", zipfile.ZIP_DEFLATED) as package:
            for info in source.infolist():
                if info.filename != SHEET:
                    package.writestr(info, source.read(info))
                    continue
                head, tail = source.read(info).decode("utf-8").split("</sheetData>")
                if self.count:
                    head = _DIMENSION.sub(f'<dimension ref="A1:{self.last_col}{self.count + 1}"/>', head, count=1)
                with package.open(info, "w") as sheet_xml, open(self.rows_file.name, "rb") as rows_xml:
                    sheet_xml.write(head.encode("utf-8"))
                    shutil.copyfileobj(rows_xml, sheet_xml, 1024 * 1024)
                    sheet_xml.write(("</sheetData>" + tail).encode("utf-8"))
        self.folder.cleanup()
        return self.count

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.close()
        else:
            self.rows_file.close()
            self.folder.cleanup()
