"""Training-hour exports at county scale: the database selects and formats every cell, Python streams.

lms/records/export.py holds the contract (columns, labels, formula prefixes, number columns) and the
straightforward row dicts (`export_rows`) that the dashboard and the tests take as the reference.
Here the same rules are SQL over the same query (services.records_query / summary_query: one join,
one set of filters, the unit subtree through accounts/scope.in_subtree, one order), so a million
records never become a million dicts:

- CSV on SQLite: each row comes back as one finished line (text neutralised, numbers printed at their
  scale, local time by strftime). A batch of lines is checked for what CSV quotes (, " CR LF); the few
  rows holding one are read again cell by cell and written by csv.writer, so quoting stays Python's.
- CSV on PostgreSQL: COPY (query) TO STDOUT WITH CSV, its LF row ends turned into CRLF.
- XLSX: typed cells (text neutralised by the database, numbers as numbers) into lms/records/xlsx.py.

The bytes equal export.iter_csv's over export_rows (tests/test_export_fast.py, on awkward data).
Local time: Asia/Shanghai is +08:00 without daylight saving since 1991; no record is older
(services.FIRST_RECORD_YEAR), so a fixed offset is exact. Hours are printed as stored, two decimals
(Numeric(6, 2)); SQLite's printf rounds an exact binary half (0.125) up where Python rounds it to even,
a value the column never holds.
"""
from __future__ import annotations

import csv
import io
import itertools
from datetime import date, timedelta
from typing import Callable, Iterator, NamedTuple

from sqlalchemy import Numeric, case, func, literal, literal_column

from lms.accounts.models import Unit, User
from lms.audiences import AUDIENCE_CODES
from lms.extensions import db
from lms.records import export
from lms.records.models import TrainingRecord
from lms.records.services import annual_target, records_query, summary_query
from lms.records.xlsx import SheetWriter

BATCH = 5000
BOM = "\ufeff".encode("utf-8")
OFFSET = timedelta(hours=8)  # Asia/Shanghai
SPECIAL = (",", '"', "\r", "\n")  # what makes csv.writer quote a cell


class Filters(NamedTuple):
    date_from: date | None = None
    date_to: date | None = None
    unit: Unit | None = None  # its whole subtree
    audience: str | None = None


Progress = Callable[[int], None]  # called with the number of rows just written


FORMULA_CODES = [ord(prefix) for prefix in export.FORMULA_PREFIXES]  # each one character


def _neutral(expr, dialect: str):
    """export.neutralise in SQL: an apostrophe before a formula-like first character, found by its code
    point (a number compared, no substring made: a third of the cost on PostgreSQL; UTF-8 databases)."""
    first = func.unicode(expr) if dialect == "sqlite" else func.ascii(expr)
    return case((first.in_(FORMULA_CODES), literal("'").concat(expr)), else_=expr)


def _label(expr, labels: dict, dialect: str):
    """A code's label (neutralised like any text), an unknown code as it is (neutralised)."""
    return case({code: export.neutralise(str(label)) for code, label in labels.items()}, value=expr,
                else_=_neutral(expr, dialect))


def _local_time(expr, dialect: str):
    """services.to_local(…).isoformat(timespec="seconds")."""
    if dialect == "sqlite":  # whole seconds first: SQLite would round 59.9999995 s up to the next second
        return func.strftime("%Y-%m-%dT%H:%M:%S+08:00", func.substr(expr, 1, 19), "+8 hours")
    return func.to_char(expr + OFFSET, 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"')


def _fixed(expr, places: int, dialect: str, text: bool):
    """A Numeric cell: for CSV its text at the column's scale (PostgreSQL's numeric prints so itself),
    for XLSX the number (SQLAlchemy's Decimal, as the reference reads it)."""
    if not text or dialect != "sqlite":
        return expr
    return case((expr.is_(None), None), else_=func.printf(f"%.{places}f", expr))


def detail_cells(lang: str, dialect: str, text: bool) -> list:
    kinds = {kind: zh if lang == "zh" else en for kind, (zh, en) in export.KIND_LABELS.items()}
    cells = {
        "record_id": TrainingRecord.id,
        "name": _neutral(User.full_name, dialect),
        "username": _neutral(User.username, dialect),
        "unit": _neutral(Unit.name, dialect),
        "unit_code": _neutral(Unit.code, dialect),
        "audience": _label(User.audience, export.audience_names(lang), dialect),
        "activity": _neutral(TrainingRecord.title, dialect),
        "type": _label(TrainingRecord.kind, kinds, dialect),
        "hours": _fixed(TrainingRecord.hours, 2, dialect, text),
        "watched_minutes": _fixed(TrainingRecord.watched_minutes, 1, dialect, text),
        "quiz_score": TrainingRecord.quiz_score,
        "completed_at": _local_time(TrainingRecord.earned_at, dialect),
        "certificate_no": _neutral(TrainingRecord.certificate_no, dialect),
    }
    return [cells[key] for key, _ in export.DETAIL_COLUMNS]


def summary_cells(lang: str, dialect: str, text: bool) -> list:
    """export.summary_rows in SQL: the target per audience read once, 是/否 by the total rounded to cents."""
    targets = {code: annual_target(code) for code in AUDIENCE_CODES}
    yes, no, untargeted = ("是", "否", "无目标") if lang == "zh" else ("yes", "no", "no target")
    total = func.sum(TrainingRecord.hours)
    met = case({code: (case((func.round(total, 2) >= literal(target, Numeric(8, 2)), yes), else_=no) if target
                       else untargeted) for code, target in targets.items()},
               value=User.audience, else_=untargeted)
    cells = {
        "name": _neutral(User.full_name, dialect),
        "username": _neutral(User.username, dialect),
        "unit": _neutral(Unit.name, dialect),
        "unit_code": _neutral(Unit.code, dialect),
        "audience": _label(User.audience, export.audience_names(lang), dialect),
        "total_hours": _fixed(total, 2, dialect, text),
        "annual_target": case({code: str(target) if text else float(target) for code, target in targets.items()},
                              value=User.audience, else_="0" if text else 0.0),
        "target_met": met,
    }
    return [cells[key] for key, _ in export.SUMMARY_COLUMNS]


def _query(summary: bool, filters: Filters):
    if summary:
        return summary_query(*filters)
    return records_query(*filters)


def _statement(summary: bool, filters: Filters, cells: list):
    return _query(summary, filters).with_entities(*cells).statement


def columns(summary: bool) -> list:
    return export.SUMMARY_COLUMNS if summary else export.DETAIL_COLUMNS


def count(summary: bool, filters: Filters) -> int:
    """Rows the export will have: records, or people with records (one index-only pass)."""
    query = _query(summary, filters).order_by(None)
    if summary:
        return query.with_entities(User.id).count()
    return query.with_entities(func.count()).scalar()


def _header(summary: bool, lang: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(export.headers(columns(summary), lang))
    return BOM + buffer.getvalue().encode("utf-8")


def csv_chunks(summary: bool, filters: Filters, lang: str = "zh", progress: Progress | None = None) -> Iterator[bytes]:
    """The CSV export (BOM, header, rows) as byte chunks. What needs the app (labels, targets, the SQL)
    is prepared here, before the first chunk: a streamed response needs no request context, only a
    database connection of its own while it is read."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        cells = [func.nullif(cell, "") if key not in export.NUMBER_COLUMNS else cell  # see _copy_csv
                 for (key, _), cell in zip(columns(summary), _cells(summary, lang, "postgresql", text=True))]
        rows = _copy_csv(engine, _statement(summary, filters, cells), progress)
    elif summary:  # one row per person: few enough for csv.writer
        rows = _summary_csv(engine, _statement(True, filters, summary_cells(lang, "sqlite", text=True)), progress)
    else:
        cells = detail_cells(lang, "sqlite", text=True)
        rows = _line_csv(engine, _statement(False, filters, [_line(cells)]), _statement(False, filters, cells),
                         len(cells) - 1, progress)
    return itertools.chain([_header(summary, lang)], rows)


def _cells(summary: bool, lang: str, dialect: str, text: bool) -> list:
    return (summary_cells if summary else detail_cells)(lang, dialect, text)


def _line(cells: list):
    """One finished CSV line per row (cells that need no quoting: see _line_csv)."""
    line = func.coalesce(cells[0], "")
    for cell in cells[1:]:
        line = line.concat(literal_column("','")).concat(func.coalesce(cell, ""))
    return line


def _summary_csv(engine, statement, progress) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    with engine.connect() as connection:
        result = connection.execute(statement)
        while rows := result.cursor.fetchmany(BATCH):  # plain tuples (see _line_csv)
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(rows)
            yield buffer.getvalue().encode("utf-8")
            if progress:
                progress(len(rows))
        result.close()


def _line_csv(engine, lines_statement, cells_statement, commas: int, progress) -> Iterator[bytes]:
    """Detail rows as lines made by SQLite, read as bytes (no decoding and encoding again). A line
    starts with its record id, by which the rare lines holding a comma, quote or line break of their
    own are read again cell by cell (`cells_statement`) and written by csv.writer."""
    with engine.connect() as connection:
        sqlite = connection.connection.dbapi_connection
        sqlite.text_factory = bytes
        try:
            result = connection.execute(lines_statement)
            cursor = result.cursor  # the DBAPI cursor's plain tuples: a Row per record costs a second a million
            while rows := cursor.fetchmany(BATCH):
                lines = [row[0] for row in rows]
                body = b"\r\n".join(lines)
                # only the commas and line ends put there, and no quote: nothing for CSV to quote
                if b'"' in body or len(body) - len(body.translate(None, b",\r\n")) != (commas + 2) * len(lines) - 2:
                    body = b"\r\n".join(_requoted(connection, cells_statement, lines, commas))
                yield body + b"\r\n"
                if progress:
                    progress(len(rows))
            result.close()
        finally:
            sqlite.text_factory = str  # the connection goes back to the pool


def _requoted(connection, cells_statement, lines: list[bytes], commas: int) -> list[bytes]:
    """The batch's lines, those holding a character CSV quotes written again by csv.writer."""
    awkward = {int(line[:line.index(b",")]): n for n, line in enumerate(lines)
               if line.count(b",") != commas or any(char.encode() in line for char in SPECIAL)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # which also decides that CR and LF are quoted
    for row in connection.execute(cells_statement.where(TrainingRecord.id.in_(list(awkward)))):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell.decode("utf-8") if isinstance(cell, bytes) else cell for cell in row])
        lines[awkward[row[0]]] = buffer.getvalue()[:-2].encode("utf-8")
    return lines


def _copy_csv(engine, statement, progress) -> Iterator[bytes]:
    """COPY … TO STDOUT WITH CSV. PostgreSQL quotes an empty string (not NULL), so text cells turn ''
    into NULL (csv_chunks); its rows end in LF, turned into CRLF outside quoted cells."""
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        # This transaction only: reading every record, hash joins beat the nested loops the planner
        # picks for wide formatted rows (1.4× psql's \copy of the bare columns instead of 3×), and
        # compiling the formatting expressions (JIT) costs more than it saves (0.3 s of a 1 s summary).
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute("SET LOCAL jit = off")
        with cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy:
            rows = []
            for row in itertools.chain(copy, [None]):  # libpq hands over one row at a time
                if row is not None:
                    rows.append(bytes(row))  # a copy: joining psycopg's memoryviews is twice as slow
                if len(rows) == BATCH or (row is None and rows):
                    yield crlf(b"".join(rows), False)[0]  # a batch starts outside quotes, at a row
                    if progress:
                        progress(len(rows))
                    rows = []
        cursor.close()


def crlf(chunk: bytes, quoted: bool) -> tuple[bytes, bool, int]:
    """LF row ends → CRLF in a piece of CSV that starts inside a quoted cell when `quoted`; returns the
    piece, whether it ends inside one, and how many rows ended in it."""
    if not quoted and b'"' not in chunk:
        return chunk.replace(b"\n", b"\r\n"), False, chunk.count(b"\n")
    parts = chunk.split(b'"')
    rows = 0
    for n in range(0 if not quoted else 1, len(parts), 2):  # the parts outside quotes
        rows += parts[n].count(b"\n")
        parts[n] = parts[n].replace(b"\n", b"\r\n")
    return b'"'.join(parts), quoted ^ (len(parts) % 2 == 0), rows


def write_csv(target, summary: bool, filters: Filters, lang: str = "zh", progress: Progress | None = None) -> None:
    """The CSV export into a binary file object."""
    for chunk in csv_chunks(summary, filters, lang, progress):
        target.write(chunk)


def write_xlsx(target, summary: bool, filters: Filters, lang: str = "zh", progress: Progress | None = None) -> int:
    """The XLSX export (a path or a binary file object); returns the number of rows."""
    keys = [key for key, _ in columns(summary)]
    with db.engine.connect() as connection:
        cells = _cells(summary, lang, connection.dialect.name, text=False)
        # a server-side cursor on PostgreSQL: psycopg would otherwise hold every row in memory
        result = connection.execution_options(stream_results=True, max_row_buffer=BATCH).execute(
            _statement(summary, filters, cells))
        with SheetWriter(target, "学时" if lang == "zh" else "hours", export.headers(columns(summary), lang),
                         [key in export.NUMBER_COLUMNS for key in keys]) as sheet:
            while rows := result.fetchmany(BATCH):
                sheet.write_rows(rows)
                if progress:
                    progress(len(rows))
    return sheet.count
